// Forms: a submit handled by the page instead of a navigation, and what a control holds.

/** What the form's control `name` holds, trimmed. */
export const field = (form: HTMLFormElement, name: string): string => String(new FormData(form).get(name) ?? '').trim();

/** A submit handler: no navigation; `run` gets the submitted form. */
export const onSubmit = (run: (form: HTMLFormElement) => void) => (event: Event) => {
  event.preventDefault();
  run(event.currentTarget as HTMLFormElement);
};

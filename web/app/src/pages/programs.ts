// TODO(pages): the programs page is being built.
import { html } from 'lit-html';
import { start } from '../lib/page';

start({ title: 'programs', async load() {}, view: () => html`` });

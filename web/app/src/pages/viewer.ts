// TODO(pages): the viewer page is being built.
import { html } from 'lit-html';
import { start } from '../lib/page';

start({ title: 'viewer', async load() {}, view: () => html`` });

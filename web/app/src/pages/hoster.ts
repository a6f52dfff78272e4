// TODO(pages): the hoster page is being built.
import { html } from 'lit-html';
import { start } from '../lib/page';

start({ title: 'hoster', async load() {}, view: () => html`` });

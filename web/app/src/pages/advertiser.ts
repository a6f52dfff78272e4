// TODO(pages): the advertiser page is being built.
import { html } from 'lit-html';
import { start } from '../lib/page';

start({ title: 'advertiser', async load() {}, view: () => html`` });

/**
 * Entry point of the bundle (dist/sdk.js): installs the SDK as window.adescrow. A second
 * copy of the script on the same page finds the first instance and does nothing.
 */
import { boot } from './sdk';

boot(window, document.currentScript as HTMLScriptElement | null);

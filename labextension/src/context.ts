/** What the tabs need from JupyterLab, given by the plugin (index.ts). */
export interface PanelContext {
  /** Open a URL (a Dask dashboard) in a tab of the main area. */
  openInTab(url: string, title: string, id: string): void;
  /** Insert code as a new cell of the active notebook (a new notebook if none). */
  insertCode(code: string): Promise<void>;
  /** Copy text to the clipboard. */
  copy(text: string): void;
}

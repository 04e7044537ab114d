/**
 * jhub_af's JupyterLab panel: Dask clusters, Rucio data and my usage, in one
 * left-sidebar panel. The server side is the jupyter-server extension jhub_af.lab.
 */

import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Clipboard, IFrame, MainAreaWidget } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';

import { PanelContext } from './context';
import { FacilityPanel } from './panel';

const OPEN = 'jhub-af:open-panel';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jhub-af-panel:plugin',
  description: 'The facility panel: Dask clusters, Rucio data and my usage.',
  autoStart: true,
  requires: [ILabShell],
  optional: [INotebookTracker],
  activate: (app: JupyterFrontEnd, shell: ILabShell, tracker: INotebookTracker | null) => {
    const ctx: PanelContext = {
      openInTab(url: string, title: string, id: string) {
        const existing = Array.from(shell.widgets('main')).find(w => w.id === id);
        if (existing) {
          shell.activateById(id);
          return;
        }
        const frame = new IFrame({
          sandbox: ['allow-scripts', 'allow-same-origin', 'allow-forms', 'allow-popups']
        });
        frame.url = url;
        const widget = new MainAreaWidget({ content: frame });
        widget.id = id;
        widget.title.label = title;
        widget.title.closable = true;
        shell.add(widget, 'main');
        shell.activateById(id);
      },
      async insertCode(code: string) {
        let nb: NotebookPanel | null = tracker?.currentWidget ?? null;
        if (!nb) {
          nb = (await app.commands.execute('notebook:create-new', {
            kernelName: 'python3'
          })) as NotebookPanel;
        }
        if (!nb) {
          throw new Error('Open a notebook first, then insert the code again.');
        }
        await nb.context.ready;
        shell.activateById(nb.id);
        const notebook = nb.content;
        const active = notebook.activeCell;
        if (!active || active.model.sharedModel.getSource().trim() !== '') {
          NotebookActions.insertBelow(notebook);
        }
        notebook.activeCell?.model.sharedModel.setSource(code);
      },
      copy(text: string) {
        Clipboard.copyToSystem(text);
      }
    };
    const panel = new FacilityPanel(ctx);
    shell.add(panel, 'left', { rank: 900 });
    app.commands.addCommand(OPEN, {
      label: 'Open the facility panel',
      execute: () => shell.activateById(panel.id)
    });
  }
};

export default plugin;

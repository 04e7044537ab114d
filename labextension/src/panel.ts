/** The sidebar panel: one widget with the Dask, Data and Usage tabs. */

import { LabIcon } from '@jupyterlab/ui-components';
import { TabPanel } from '@lumino/widgets';

import { PanelContext } from './context';
import { DaskTab } from './dask';
import { DataTab } from './data';
import { UsageTab } from './usage';

export const panelIcon = new LabIcon({
  name: 'jhub-af-panel:facility',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16"><g class="jp-icon3" fill="#616161">' +
    '<circle cx="12" cy="12" r="2.5"/><ellipse cx="12" cy="12" rx="10" ry="4" fill="none" stroke="#616161" stroke-width="1.5"/>' +
    '<ellipse cx="12" cy="12" rx="10" ry="4" fill="none" stroke="#616161" stroke-width="1.5" transform="rotate(60 12 12)"/>' +
    '<ellipse cx="12" cy="12" rx="10" ry="4" fill="none" stroke="#616161" stroke-width="1.5" transform="rotate(120 12 12)"/></g></svg>'
});

export class FacilityPanel extends TabPanel {
  readonly dask: DaskTab;
  readonly data: DataTab;
  readonly usage: UsageTab;

  constructor(ctx: PanelContext) {
    super();
    this.id = 'jhub-af-panel';
    this.addClass('jaf-panel');
    this.title.icon = panelIcon;
    this.title.caption = 'Facility: Dask, data and usage';
    this.dask = new DaskTab(ctx);
    this.data = new DataTab(ctx);
    this.usage = new UsageTab();
    this.addWidget(this.dask);
    this.addWidget(this.data);
    this.addWidget(this.usage);
  }
}

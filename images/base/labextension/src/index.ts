/**
 * SlicerHub: "Publish to a Course…" in JupyterLab.
 *
 * One command, in the File menu (images/base/jupyter/lab/overrides.json), the
 * file browser's context menu on notebooks and the command palette. It opens
 * a dialog for the open (or selected) notebook: course (those the user
 * teaches), app name, title, description, an optional PNG thumbnail. The
 * dialog talks to this server only (slicerhub/courses, slicerhub/publish:
 * images/base/python/slicerhub_server/publish.py), which calls the courses
 * service with the server's own token: the browser holds no hub token.
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { Dialog, ICommandPalette } from '@jupyterlab/apputils';
import { URLExt } from '@jupyterlab/coreutils';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

export const COMMAND = 'slicerhub:publish-to-course';
const LABEL = 'Publish to a Course…';
const MAX_THUMBNAIL_BYTES = 2 * 1024 * 1024; // the service's limit

interface ICourse {
  name: string;
  teacher: boolean;
}

interface ICourses {
  courses: ICourse[];
  gallery_url: string;
}

interface IPublished {
  course: string;
  name: string;
  version: number;
  title: string;
  open_url: string | null;
  gallery_url: string;
}

/** The app name a file name suggests (as slicerhub_server.publish.default_app_name). */
export function defaultAppName(path: string): string {
  let stem = path.split('/').pop() || '';
  if (stem.toLowerCase().endsWith('.ipynb')) {
    stem = stem.slice(0, -'.ipynb'.length);
  }
  const name = stem
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return name.slice(0, 40).replace(/-+$/, '') || 'app';
}

function defaultTitle(path: string): string {
  const stem = (path.split('/').pop() || '').replace(/\.ipynb$/i, '');
  return stem.replace(/[-_]+/g, ' ').trim();
}

async function request<T>(
  what: string,
  init: RequestInit = {}
): Promise<{ ok: boolean; status: number; data: any }> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'slicerhub', what);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (e) {
    return { ok: false, status: 0, data: { message: `no answer from this server (${e})` } };
  }
  let data: any = {};
  try {
    data = await response.json();
  } catch {
    data = { message: `HTTP ${response.status} ${response.statusText}` };
  }
  return { ok: response.ok, status: response.status, data: data as T };
}

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) {
    node.append(child);
  }
  return node;
}

function readBase64(file: File): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => {
      const url = String(reader.result);
      resolve(url.slice(url.indexOf(',') + 1));
    };
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

/** The dialog's body: the form, and where the result or the error shows. */
class PublishForm extends Widget {
  readonly path: string;
  private _course = element('select', { name: 'course' });
  private _name = element('input', {
    name: 'name',
    required: true,
    pattern: '[a-z0-9]([a-z0-9\\-]{0,38}[a-z0-9])?',
    title: '1-40 lower-case letters, digits and -'
  });
  private _title = element('input', { name: 'title' });
  private _description = element('textarea', { name: 'description', rows: 2 });
  private _thumbnail = element('input', {
    name: 'thumbnail',
    type: 'file',
    accept: 'image/png'
  });
  private _status = element('div', { className: 'jp-SlicerHubPublish-status' });
  private _busy = false;

  constructor(path: string) {
    super();
    this.path = path;
    this.addClass('jp-SlicerHubPublish');
    this._name.value = defaultAppName(path);
    this._title.value = defaultTitle(path);
    const row = (label: string, field: HTMLElement, hint?: string) =>
      element(
        'label',
        {},
        element('span', {}, label),
        field,
        ...(hint ? [element('small', {}, hint)] : [])
      );
    // The result or the error first, where it is seen without scrolling.
    this.node.append(
      element('p', { className: 'jp-SlicerHubPublish-notebook' }, 'Notebook: ', element('code', {}, path)),
      this._status,
      row('Course', this._course),
      row('App name', this._name, 'lower-case letters, digits and -; publishing again adds a version'),
      row('Title', this._title),
      row('Description', this._description),
      row('Thumbnail (PNG, optional)', this._thumbnail)
    );
    this._course.append(element('option', { value: '', textContent: 'Loading your courses…' }));
  }

  /** Fill the course list; false when the user teaches no course here. */
  async load(): Promise<boolean> {
    const reply = await request<ICourses>('courses');
    this._course.textContent = '';
    if (!reply.ok) {
      this.showError(reply.data.message || `HTTP ${reply.status}`);
      return false;
    }
    const teaches = (reply.data.courses as ICourse[]).filter(c => c.teacher);
    for (const c of teaches) {
      this._course.append(element('option', { value: c.name, textContent: c.name }));
    }
    if (!teaches.length) {
      this._course.append(element('option', { value: '', textContent: '(none)' }));
      this.showError(
        'You teach no course here: only teachers of a course can publish apps to it.'
      );
      return false;
    }
    return true;
  }

  showError(message: string): void {
    this._status.className = 'jp-SlicerHubPublish-status jp-SlicerHubPublish-error';
    this._status.textContent = message;
  }

  private _showDone(p: IPublished): void {
    this._status.className = 'jp-SlicerHubPublish-status jp-SlicerHubPublish-done';
    this._status.textContent = '';
    const gallery = element('a', {
      href: p.gallery_url,
      target: '_blank',
      rel: 'noopener',
      textContent: 'the course gallery'
    });
    this._status.append(
      `Published ${p.course}/${p.name} version ${p.version}`,
      element('br'),
      'Students find it in ',
      gallery,
      '.'
    );
  }

  async publish(): Promise<void> {
    if (this._busy) {
      return;
    }
    if (!this._course.value) {
      this.showError('Choose a course you teach.');
      return;
    }
    if (!this._name.checkValidity()) {
      this.showError(
        `App name ${JSON.stringify(this._name.value)} is not allowed: use 1-40 lower-case letters, digits and '-'.`
      );
      return;
    }
    const body: { [key: string]: string } = {
      path: this.path,
      course: this._course.value,
      name: this._name.value,
      title: this._title.value,
      description: this._description.value
    };
    const file = this._thumbnail.files && this._thumbnail.files[0];
    if (file) {
      if (file.size > MAX_THUMBNAIL_BYTES) {
        this.showError('The thumbnail is larger than 2 MB.');
        return;
      }
      body.thumbnail = await readBase64(file);
    }
    this._busy = true;
    this._status.className = 'jp-SlicerHubPublish-status';
    this._status.textContent = 'Publishing…';
    try {
      const reply = await request<IPublished>('publish', {
        method: 'POST',
        body: JSON.stringify(body)
      });
      if (reply.ok) {
        this._showDone(reply.data as IPublished);
      } else {
        this.showError(reply.data.message || `HTTP ${reply.status}`);
      }
    } finally {
      this._busy = false;
    }
  }
}

/** A dialog whose Publish button publishes and keeps the dialog open for the result. */
class PublishDialog extends Dialog<void> {
  private _form: PublishForm;
  private _publishIndex: number;

  constructor(form: PublishForm) {
    const buttons = [
      Dialog.cancelButton({ label: 'Close' }),
      Dialog.okButton({ label: 'Publish' })
    ];
    super({ title: LABEL, body: form, buttons, defaultButton: 1, hasClose: true });
    this._form = form;
    this._publishIndex = 1;
    this.addClass('jp-SlicerHubPublishDialog');
  }

  resolve(index?: number): void {
    if ((index === undefined ? this._publishIndex : index) === this._publishIndex) {
      void this._form.publish();
      return;
    }
    super.resolve(index);
  }
}

function isNotebook(path: string | undefined): path is string {
  return !!path && path.toLowerCase().endsWith('.ipynb');
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: '@slicerhub/publish:plugin',
  description: 'Publish a notebook to a course (SlicerHub courses service).',
  autoStart: true,
  optional: [INotebookTracker, IFileBrowserFactory, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    notebooks: INotebookTracker | null,
    browsers: IFileBrowserFactory | null,
    palette: ICommandPalette | null
  ) => {
    const selectedNotebook = (): string | undefined => {
      const browser = browsers?.tracker.currentWidget;
      if (!browser) {
        return undefined;
      }
      for (const item of browser.selectedItems()) {
        if (isNotebook(item.path)) {
          return item.path;
        }
      }
      return undefined;
    };
    const target = (args: { [key: string]: any }): string | undefined => {
      if (isNotebook(args.path)) {
        return args.path;
      }
      if (args.source === 'filebrowser') {
        return selectedNotebook();
      }
      // The notebook being worked on, else the one selected in the file browser.
      const current = notebooks?.currentWidget;
      const open = current && app.shell.currentWidget === current ? current.context.path : undefined;
      return open || notebooks?.currentWidget?.context.path || selectedNotebook();
    };

    app.commands.addCommand(COMMAND, {
      label: LABEL,
      caption: 'Publish this notebook as an app of a course you teach',
      isEnabled: () => true,
      execute: async args => {
        const path = target(args);
        if (!path) {
          await new Dialog({
            title: LABEL,
            body: 'Open a notebook, or select one in the file browser, to publish it.',
            buttons: [Dialog.okButton({ label: 'Close' })]
          }).launch();
          return;
        }
        const form = new PublishForm(path);
        const dialog = new PublishDialog(form);
        const shown = dialog.launch();
        await form.load();
        await shown;
      }
    });

    app.contextMenu.addItem({
      command: COMMAND,
      selector: '.jp-DirListing-item[data-file-type="notebook"]',
      args: { source: 'filebrowser' },
      rank: 10
    });
    palette?.addItem({ command: COMMAND, category: 'SlicerHub' });
  }
};

export default plugin;

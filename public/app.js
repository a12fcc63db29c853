// The page: the form, the progress view and the result. The upload logic
// lives in upload.js, the HTTP calls in api.js.

import { api, ApiError } from './api.js';
import { Upload, saved, sessionEnded } from './upload.js';

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
};

const MiB = 1024 * 1024;
const mib = (bytes) => `${(bytes / MiB).toFixed(1)} MiB`;

function log(line) {
  $('log').textContent += `${new Date().toISOString().slice(11, 19)} ${line}\n`;
}

/** The files the form holds, with their API category. */
function chosenFiles() {
  const chosen = [];
  for (const file of $('instruction').files) chosen.push({ file, category: 'instruction' });
  for (const file of $('images').files) chosen.push({ file, category: 'image' });
  for (const file of $('partslist').files) chosen.push({ file, category: 'parts-list' });
  return chosen;
}

// ---- progress ---------------------------------------------------------

let pending = false;
function render(upload) {
  // Progress events come per chunk; draw at most once a frame.
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    draw(upload);
  });
}

function draw(upload) {
  const total = upload.totalBytes();
  const done = upload.bytesDone();
  $('phase').textContent = upload.status[0].toUpperCase() + upload.status.slice(1);
  $('overall-bar').style.width = `${total ? (100 * done) / total : 0}%`;
  const rate = upload.rate();
  $('overall-text').textContent = `${mib(done)} of ${mib(total)}` + (rate > 0 && !upload.offline ? ` · ${mib(rate)}/s` : '');
  // Exact figures, for scripts that watch the page (tests/browser/check.mjs).
  $('overall-text').dataset.bytesDone = String(done);
  $('overall-text').dataset.bytesTotal = String(total);
  $('overall-text').dataset.bytesSent = String(upload.bytesSent);
  $('offline').hidden = !upload.offline;
  document.body.dataset.network = upload.offline ? 'offline' : 'online';
  const rows = $('file-rows');
  if (rows.children.length !== upload.files.length) {
    rows.replaceChildren(
      ...upload.files.map((f) =>
        el('li', { 'data-file': f.meta.name },
          el('div', { class: 'name' }, el('span', {}, `${f.meta.name} (${f.meta.category})`), el('span', { class: 'numbers' })),
          el('div', { class: 'bar' }, el('div')),
        ),
      ),
    );
  }
  upload.files.forEach((f, i) => {
    const row = rows.children[i];
    const fileDone = upload.fileBytesDone(f);
    row.querySelector('.bar > div').style.width = `${f.size ? (100 * fileDone) / f.size : 0}%`;
    const state = f.fileUrl ? `complete${f.verified ? ' · verified' : ''}` : `part ${f.parts.size} of ${f.partCount || '?'}`;
    row.querySelector('.name .numbers').textContent = `${mib(fileDone)} of ${mib(f.size)} · ${state}`;
  });
}

// ---- result -----------------------------------------------------------

/**
 * Per file: the CRC32C this browser computed and whether the server found it
 * in S3 (`checksumVerified`, §4.14).
 */
function integrity(files) {
  return files.map((f) =>
    el('li', { 'data-file': f.meta.name, 'data-verified': String(Boolean(f.verified)) },
      el('strong', {}, f.meta.name), ' ',
      el('code', {}, f.storedCrc32c ?? f.crc32c ?? '—'), ' ',
      el('span', { class: f.verified ? 'verified' : 'unverified' }, f.verified ? '✓ verified' : 'not verified'),
    ),
  );
}

function showMoc(moc, files = []) {
  const result = $('result');
  result.className = 'ok';
  const links = (urls) => (urls ?? []).map((u) => el('dd', {}, el('a', { href: u }, u.split('/').pop())));
  result.replaceChildren(
    el('h2', {}, moc.idempotent ? 'Your MOC (already created)' : 'Your MOC is uploaded'),
    el('dl', { id: 'moc' },
      el('dt', {}, 'Title'), el('dd', { id: 'moc-title' }, moc.title ?? ''),
      el('dt', {}, 'Slug'), el('dd', { id: 'moc-slug' }, moc.slug ?? ''),
      el('dt', {}, 'ID'), el('dd', { id: 'moc-id' }, moc.id ?? ''),
      el('dt', {}, 'Status'), el('dd', {}, moc.status ?? ''),
      el('dt', {}, 'Instructions'), ...links(moc.pdfKey ? [moc.pdfKey] : []),
      el('dt', {}, 'Images'), ...links(moc.imageKeys),
      el('dt', {}, 'Parts lists'), ...links(moc.partsKeys),
    ),
    ...(files.length ? [el('h3', {}, 'Integrity (CRC32C)'), el('ul', { id: 'integrity' }, ...integrity(files))] : []),
    newUploadButton(),
  );
  result.hidden = false;
  $('progress').hidden = true;
}

function showError(error, chosen = []) {
  const result = $('result');
  result.className = 'error';
  // Per-file reasons: finalize's FILE_ERROR (reason FILE_VALIDATION_FAILED,
  // docs/contract.md §4.7 step 9) and failed registrations both carry
  // details.files.
  const files = Array.isArray(error.details?.files) ? error.details.files : [];
  // The code, and the finer reason when it says more (docs/contract.md §0).
  const code = error.code ?? 'ERROR';
  const label = error.reason && error.reason !== code ? `${code}: ${error.reason}` : code;
  result.replaceChildren(
    el('h2', {}, error.code === 'EXPIRED_SESSION' ? 'The upload session expired'
      : error.reason === 'FILE_MISMATCH' ? 'That is not the file this upload started with' : 'The upload failed'),
    el('p', { id: 'error-message' }, error.message, ' ', el('code', {}, `(${label})`)),
    ...(error.correlationId
      ? [el('p', { id: 'error-reference' }, 'Support reference: ', el('code', {}, error.correlationId))]
      : []),
    ...(files.length
      ? [el('ul', { id: 'error-files' },
          ...files.map((f) => el('li', {}, el('strong', {}, f.filename ?? f.fileId ?? 'file'), ': ', el('span', { class: 'reason' }, f.reason ?? ''), ' ', f.message ?? '')))]
      : []),
    ...(['FILE_MISMATCH', 'FILE_NOT_CHOSEN'].includes(error.reason) ? [chooseAgainButton()] : []),
    ...(error.code === 'EXPIRED_SESSION'
      ? [el('p', { id: 'expired' }, 'What was uploaded is gone with the session. The files you picked are still here:'), freshStartButton(chosen)]
      : []),
    newUploadButton(),
  );
  result.hidden = false;
  $('cancel').disabled = true;
}

function newUploadButton() {
  const button = el('button', { type: 'button', id: 'again' }, 'Upload another MOC');
  button.addEventListener('click', () => location.reload());
  return button;
}

// ---- the flow ---------------------------------------------------------

let current = null;
/** The session picked for resuming (a §4.15 SessionView), if any. */
let selected = null;

async function go(kind, chosen = chosenFiles()) {
  const upload = new Upload({ title: $('title').value.trim(), onChange: render, log });
  current = upload;
  $('choose').hidden = true;
  $('resume').hidden = true;
  $('sessions').hidden = true;
  $('progress').hidden = false;
  $('result').hidden = true;
  $('cancel').disabled = false;
  try {
    const answer = kind === 'resume' ? await upload.resume(await freshView(selected), chosen) : await upload.start(chosen);
    draw(upload);
    if (answer?.alreadyFinalized) {
      saved.clear();
      showMoc({ id: answer.mocId, title: upload.title, idempotent: true }, upload.files);
    } else {
      showMoc(answer, upload.files);
    }
  } catch (error) {
    if (error.cancelled) return;
    log(`${error.code ?? 'ERROR'}${error.reason && error.reason !== error.code ? ` (${error.reason})` : ''}: ${error.message}`);
    // A 4xx is final for this session (validation, expiry, conflict); a
    // network failure, 408, 429 or 5xx leaves it resumable after a reload.
    // A file refused as not the registered one (FILE_MISMATCH) or not
    // chosen leaves the session as it was: choose the right file.
    const wrongFile = ['FILE_MISMATCH', 'FILE_NOT_CHOSEN'].includes(error.reason);
    const final = error.status >= 400 && error.status < 500 && ![408, 429].includes(error.status) && !wrongFile;
    if (final) saved.clear();
    showError(error, chosen);
  }
}

/** The session as the server says it is now (§4.8), else as it was listed. */
async function freshView(view) {
  if (!view) throw new ApiError(0, 'NO_SESSION', 'Pick the upload to resume.', {});
  return api.status(view.sessionId).catch((error) => {
    if (error.status === 404) throw sessionEnded('gone');
    log(`session status: ${error.code} ${error.message}; resuming from the list`);
    return view;
  });
}

/** A file was refused as not the upload's: the form again, the session still picked. */
function chooseAgainButton() {
  const button = el('button', { type: 'button', id: 'choose-again' }, 'Choose the files again');
  button.addEventListener('click', () => {
    $('result').hidden = true;
    $('progress').hidden = true;
    $('choose').hidden = false;
    $('choose').reset();
    if (selected) pick(selected);
  });
  return button;
}

/** The session expired anyway: say so, and start afresh with the files already picked. */
function freshStartButton(chosen) {
  const button = el('button', { type: 'button', id: 'fresh-start' }, 'Start a new upload with these files');
  button.addEventListener('click', () => {
    saved.clear();
    selected = null;
    go('new', chosen);
  });
  return button;
}

$('choose').addEventListener('submit', (event) => {
  event.preventDefault();
  go(event.submitter?.id === 'resume-button' ? 'resume' : 'new');
});

$('cancel').addEventListener('click', async () => {
  if (!current) return;
  $('cancel').disabled = true;
  $('phase').textContent = 'Cancelling';
  try {
    await current.cancel();
    $('phase').textContent = 'Cancelled';
    log('upload cancelled; the session is deleted');
  } catch (error) {
    $('phase').textContent = 'Cancelled here; the server could not confirm';
    log(`cancel: ${error.code}: ${error.message}`);
  }
  $('result').replaceChildren(newUploadButton());
  $('result').className = '';
  $('result').hidden = false;
});

$('discard').addEventListener('click', async () => {
  const sessionId = selected?.sessionId;
  if (saved.load()?.sessionId === sessionId) saved.clear();
  if (sessionId) {
    const upload = new Upload({ title: '', onChange: () => {}, log });
    upload.sessionId = sessionId;
    await upload.cancel().catch((error) => log(`discard: ${error.code}: ${error.message}`));
  }
  location.reload();
});

/** Resuming `view`: the form asks for its files again. */
function pick(view) {
  selected = view;
  for (const item of $('session-list').children) item.classList.toggle('selected', item.dataset.sessionId === view.sessionId);
  $('resume').hidden = false;
  $('resume-summary').textContent = `“${view.title ?? 'Untitled'}”, session ${view.sessionId}, expires ${new Date(view.expiresAt).toLocaleTimeString()}.`;
  $('resume-files').replaceChildren(...view.files.map((f) => el('li', {},
    `${f.name} (${mib(f.size)}, ${f.category})` + (f.status === 'completed' ? ' — complete' : ` — ${f.uploadedParts.length} of ${f.partCount} parts uploaded`))));
  $('title').value = view.title ?? '';
  $('upload').hidden = true;
  $('resume-button').hidden = false;
  $('discard').hidden = false;
}

/** The caller's resumable sessions (§4.15), from this device or any other. */
async function listResumable() {
  const { sessions } = await api.listSessions('active').catch((error) => {
    log(`listing your uploads: ${error.code} ${error.message}`);
    return { sessions: [] };
  });
  const mine = saved.load()?.sessionId;
  $('session-list').replaceChildren(...sessions.map((view) => {
    const done = view.files.reduce((sum, f) => sum + f.uploadedParts.length, 0);
    const all = view.files.reduce((sum, f) => sum + f.partCount, 0);
    const button = el('button', { type: 'button', class: 'pick' }, 'Resume this upload');
    button.addEventListener('click', () => pick(view));
    return el('li', { 'data-session-id': view.sessionId, 'data-title': view.title ?? '' },
      el('strong', {}, view.title ?? 'Untitled'), ` — ${view.files.map((f) => f.name).join(', ') || 'no files registered'}`,
      ` (${done} of ${all} parts recorded; expires ${new Date(view.expiresAt).toLocaleTimeString()})`, ' ', button);
  }));
  $('sessions').hidden = sessions.length === 0;
  const interrupted = sessions.find((view) => view.sessionId === mine);
  if (interrupted) pick(interrupted);
  else if (mine) saved.clear();
  document.body.dataset.sessions = String(sessions.length);
}

// On load: the caller's interrupted uploads are offered for resuming; the
// one this browser was sending is picked already.
listResumable().finally(() => {
  document.body.dataset.ready = 'true';
});

// The few lines an Electron main process needs to run the sidecar (not run here: no Electron in
// this repository; test/desktop_example.test.ts starts the sidecar the same way).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { app, BrowserWindow } from 'electron';

app.whenReady().then(async () => {
  // Electron's own binary runs Node scripts with ELECTRON_RUN_AS_NODE; the pipe on stdin ends
  // the sidecar with the app, even after a crash (--exit-with-parent).
  const sidecar = spawn(process.execPath, [fileURLToPath(new URL('./sidecar.mjs', import.meta.url)), '--exit-with-parent'], {
    env: { ...process.env, ELECTRON_RUN_AS_NODE: '1', DATA_DIR: `${app.getPath('userData')}/codespace` },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const [line] = await createInterface({ input: sidecar.stdout })[Symbol.asyncIterator]().next().then((next) => [next.value]);
  const { editor } = JSON.parse(line);
  await new BrowserWindow({ width: 900, height: 700 }).loadURL(editor);
  app.on('before-quit', () => sidecar.kill('SIGTERM'));
});

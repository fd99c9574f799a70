// A small Node server program (given with -e) run inside a namespace, started once it prints
// "ready": the echo servers of the driver and proxy tests.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Netns } from './netns.js';

/**
 * Run `node -e script arg` in `ns` (stderr inherited); resolves with the child once it prints
 * "ready", rejects if it exits first or stays silent for 10 s. The caller ends it by PID.
 */
export async function startNodeServer(ns: Netns, name: string, script: string, arg: unknown): Promise<ChildProcess> {
  const child = spawn('nsenter', [`--net=${ns.path}`, '--', process.execPath, '-e', script, JSON.stringify(arg)], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server ${name} did not start`)), 10_000);
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        if (d.includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('exit', (code) => reject(new Error(`server ${name} exited ${code}`)));
    });
  } catch (err) {
    if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
    throw err;
  }
  return child;
}

// Loads a native addon built by node-gyp into build/Release.
import path from 'node:path';

export function loadAddon<T>(name: string): T {
  const file = path.resolve(__dirname, '..', '..', '..', 'build', 'Release', `${name}.node`);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(file) as T;
}

// What every veth benchmark run is given: how long, how often, which frames,
// how the XDP side attaches, and where progress lines go.
import type { XdpMode } from '../backend/af-xdp/xdp-attachment';

export interface BenchRunOptions {
  seconds: number;
  runs: number;
  /** Frame size in bytes. */
  size: number;
  xdpMode: XdpMode;
  progress(line: string): void;
}

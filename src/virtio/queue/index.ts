// Virtqueues, device side: the common interface, both layouts, and the pieces they share.
export { BURST_HEAD, BURST_LEN, BURST_REGION, BURST_STRIDE, BURST_WRITABLE, BufferBurst } from './buffer-burst';
export { type BatchCopies, ChainCursor } from './chain-cursor';
export { DescriptorChain } from './descriptor-chain';
export { packedNeedEvent, vringNeedEvent } from './event-idx';
export { PackedQueue } from './packed-queue';
export { QUEUE_ERROR_COUNT, QueueError, QueueErrorCounters, queueErrorName } from './queue-error';
export { SplitQueue } from './split-queue';
export {
  createVirtqueue,
  queueFeaturesFrom,
  queueLayoutKindFrom,
  type QueueFeatures,
  type QueueLayout,
  type QueueLayoutKind,
  type QueueOptions,
  type Virtqueue,
} from './virtqueue';

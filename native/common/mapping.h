// Memory mappings handed to JavaScript as ArrayBuffers over the mapped pages
// (no copies). A mapping is released explicitly with Unmap(), which detaches
// every ArrayBuffer this thread holds over it so later accesses see length 0
// instead of faulting. Other threads may wrap the same pages with Alias();
// their owner must stop them before the mapping is released.
#pragma once
#include <napi.h>

namespace xdpvm {
void InitMapping(Napi::Env env, Napi::Object exports);
Napi::ArrayBuffer WrapMapping(Napi::Env env, void* addr, size_t len);
}

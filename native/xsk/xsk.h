#pragma once
#include <napi.h>
namespace xdpvm {
// Ring identifiers shared with TypeScript (src/native/xsk.ts).
enum Ring { RING_FILL = 0, RING_COMPLETION = 1, RING_RX = 2, RING_TX = 3 };
void InitXsk(Napi::Env env, Napi::Object exports);
void InitBpf(Napi::Env env, Napi::Object exports);
void InitNetlink(Napi::Env env, Napi::Object exports);
}

#pragma once
#include <napi.h>
namespace xdpvm {
void InitCopyBatch(Napi::Env env, Napi::Object exports);
}

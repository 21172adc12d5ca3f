// sys addon entry point (see sys.h). The mapping functions (mapAnonymous,
// mapFd, unmap, addressOf, alias) are exported here only; the kvm and xsk
// addons link native/common/mapping.cc for WrapMapping alone.
#include <napi.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include "../common/mapping.h"
#include "sys.h"

namespace xdpvm {
namespace {

void Number(Napi::Object o, const char* name, uint32_t value) { o.Set(name, Napi::Number::New(o.Env(), value)); }

void InitConstants(Napi::Env env, Napi::Object exports) {
  Napi::Object c = Napi::Object::New(env);
  Number(c, "EFD_NONBLOCK", EFD_NONBLOCK);
  Number(c, "EFD_SEMAPHORE", EFD_SEMAPHORE);
  Number(c, "EPOLL_CTL_ADD", EPOLL_CTL_ADD);
  Number(c, "EPOLL_CTL_MOD", EPOLL_CTL_MOD);
  Number(c, "EPOLL_CTL_DEL", EPOLL_CTL_DEL);
  Number(c, "EPOLLIN", EPOLLIN);
  Number(c, "EPOLLOUT", EPOLLOUT);
  Number(c, "EPOLLERR", EPOLLERR);
  Number(c, "EPOLLHUP", EPOLLHUP);
  Number(c, "EPOLLET", EPOLLET);
  exports.Set("constants", c);
}

}  // namespace

Napi::Object InitSysAddon(Napi::Env env, Napi::Object exports) {
  InitMapping(env, exports);
  InitGuestMemory(env, exports);
  InitCopyBatch(env, exports);
  InitHost(env, exports);
  InitAffinity(env, exports);
  InitEventfd(env, exports);
  InitEpoll(env, exports);
  InitUnixSocket(env, exports);
  InitCallRelay(env, exports);
  InitConstants(env, exports);
  return exports;
}
}  // namespace xdpvm

static Napi::Object Init(Napi::Env env, Napi::Object exports) { return xdpvm::InitSysAddon(env, exports); }
NODE_API_MODULE(sys, Init)

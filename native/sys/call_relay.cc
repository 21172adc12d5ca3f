// The call relay's thread (src/vmm/net/call-relay.ts): a plain native thread
// blocked in epoll on the watched call eventfds. For each wake-up it drains
// the eventfds that fired and hands their tags (the fds) to a JS callback on
// the main thread in one call; it ends when the stop tag fires. A native
// thread rather than a worker_thread: a worker is a whole Node isolate, whose
// start-up (tens of ms of CPU) competed with the VM's boot for the host's CPUs.
#include "sys.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

namespace xdpvm {
namespace {

constexpr int kMaxEvents = 64;

struct Relay {
  int epfd;
  int32_t stopTag;
  Napi::ThreadSafeFunction tsfn;
  std::thread thread;
  std::atomic<bool> joined{false};
};

void Loop(Relay* r) {
  epoll_event evs[kMaxEvents];
  for (;;) {
    int n = epoll_wait(r->epfd, evs, kMaxEvents, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;  // the epoll fd is gone: nothing more can be relayed
    }
    auto fired = std::make_unique<std::vector<int32_t>>();
    bool stop = false;
    for (int i = 0; i < n; i++) {
      int32_t tag = static_cast<int32_t>(evs[i].data.u64);
      if (tag == r->stopTag) {
        stop = true;
        continue;
      }
      uint64_t count = 0;
      // A read of 0 (or an error) means another reader took it, or the fd left the set meanwhile.
      if (read(tag, &count, sizeof count) == sizeof count && count > 0) fired->push_back(tag);
    }
    if (!fired->empty()) {
      // Unbounded queue: never blocks, so a main thread joining this one cannot deadlock with it.
      napi_status s = r->tsfn.NonBlockingCall(fired.get(), [](Napi::Env env, Napi::Function cb, std::vector<int32_t>* tags) {
        std::unique_ptr<std::vector<int32_t>> owned(tags);
        if (env == nullptr) return;  // tearing down
        Napi::Array a = Napi::Array::New(env, owned->size());
        for (size_t i = 0; i < owned->size(); i++) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, (*owned)[i]));
        cb.Call({a});
      });
      if (s == napi_ok) fired.release();
    }
    if (stop) break;
  }
  r->tsfn.Release();
}

// callRelayStart(epfd, stopTag, onFired(tags: number[])) -> handle. The thread keeps the event loop alive until it ends.
Napi::Value CallRelayStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int epfd = ArgInt(info, 0, "epfd");
  int32_t stopTag = ArgInt(info, 1, "stopTag");
  if (info.Length() < 3 || !info[2].IsFunction()) throw Napi::TypeError::New(env, "expected a callback");
  auto* r = new Relay{epfd, stopTag, Napi::ThreadSafeFunction::New(env, info[2].As<Napi::Function>(), "xdpvm call relay", 0, 1), {}};
  r->thread = std::thread(Loop, r);
  return Napi::External<Relay>::New(env, r, [](Napi::Env, Relay* relay) {
    // Never joined (the process is ending): let the thread go rather than block a finalizer.
    if (!relay->joined.load() && relay->thread.joinable()) relay->thread.detach();
    else delete relay;
  });
}

// callRelayJoin(handle): waits for the thread, which ends once its stop tag fired (the caller signals it first).
Napi::Value CallRelayJoin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsExternal()) throw Napi::TypeError::New(env, "expected a call relay handle");
  Relay* r = info[0].As<Napi::External<Relay>>().Data();
  if (!r->joined.exchange(true) && r->thread.joinable()) r->thread.join();
  return env.Undefined();
}

}  // namespace

void InitCallRelay(Napi::Env env, Napi::Object exports) {
  exports.Set("callRelayStart", Napi::Function::New(env, CallRelayStart));
  exports.Set("callRelayJoin", Napi::Function::New(env, CallRelayJoin));
}

}  // namespace xdpvm

// epoll: what an I/O worker thread blocks in. Each registered fd carries a
// caller-chosen int32 tag; a wait writes the ready tags (and optionally
// their event masks) into caller-provided arrays, so waiting allocates nothing.
#include "sys.h"

#include <algorithm>
#include <sys/epoll.h>

namespace xdpvm {
namespace {

constexpr int kMaxEvents = 128;

Napi::Value EpollCreate(const Napi::CallbackInfo& info) {
  int fd = epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) throw ErrnoError(info.Env(), "epoll_create1", errno);
  return Napi::Number::New(info.Env(), fd);
}

// epollCtl(epfd, op, fd, events, tag): op EPOLL_CTL_ADD / MOD / DEL.
Napi::Value EpollCtl(const Napi::CallbackInfo& info) {
  int epfd = ArgInt(info, 0, "epfd");
  int op = ArgInt(info, 1, "op");
  int fd = ArgInt(info, 2, "fd");
  epoll_event ev{};
  ev.events = static_cast<uint32_t>(info.Length() > 3 ? ArgInt(info, 3, "events") : 0);
  ev.data.u64 = static_cast<uint32_t>(info.Length() > 4 ? ArgInt(info, 4, "tag") : 0);
  if (epoll_ctl(epfd, op, fd, &ev) != 0) throw ErrnoError(info.Env(), What("epoll_ctl", fd).c_str(), errno);
  return info.Env().Undefined();
}

// epollWait(epfd, tags: Int32Array, timeoutMs, events?: Uint32Array) ->
// number of ready fds (at most tags.length, at most 128), or -errno (-EINTR).
Napi::Value EpollWait(const Napi::CallbackInfo& info) {
  int epfd = ArgInt(info, 0, "epfd");
  if (info.Length() < 2 || !info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw Napi::TypeError::New(info.Env(), "expected an Int32Array for tags");
  Napi::Int32Array tags = info[1].As<Napi::Int32Array>();
  int timeout = info.Length() > 2 ? ArgInt(info, 2, "timeoutMs") : -1;
  uint32_t* masks = nullptr;
  size_t nmasks = 0;
  if (info.Length() > 3 && !info[3].IsUndefined()) {
    if (!info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
      throw Napi::TypeError::New(info.Env(), "expected a Uint32Array for events");
    Napi::Uint32Array m = info[3].As<Napi::Uint32Array>();
    masks = m.Data();
    nmasks = m.ElementLength();
  }
  int max = static_cast<int>(std::min<size_t>(tags.ElementLength(), kMaxEvents));
  if (max == 0) throw Napi::RangeError::New(info.Env(), "tags must hold at least one entry");
  epoll_event evs[kMaxEvents];
  int n = epoll_wait(epfd, evs, max, timeout);
  if (n < 0) return Napi::Number::New(info.Env(), -errno);
  int32_t* out = tags.Data();
  for (int i = 0; i < n; i++) {
    out[i] = static_cast<int32_t>(evs[i].data.u64);
    if (static_cast<size_t>(i) < nmasks) masks[i] = evs[i].events;
  }
  return Napi::Number::New(info.Env(), n);
}

}  // namespace

void InitEpoll(Napi::Env env, Napi::Object exports) {
  exports.Set("epollCreate", Napi::Function::New(env, EpollCreate));
  exports.Set("epollCtl", Napi::Function::New(env, EpollCtl));
  exports.Set("epollWait", Napi::Function::New(env, EpollWait));
}

}  // namespace xdpvm

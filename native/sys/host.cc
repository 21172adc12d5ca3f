// Host facilities: fds (close, open check, dup, close-on-exec), network
// namespaces (per thread), locked-memory limits.
#include "sys.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

namespace xdpvm {
namespace {

// netnsOpen(path) -> fd of a network namespace (e.g. /run/netns/NAME or /proc/self/ns/net).
Napi::Value NetnsOpen(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0, "path");
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw ErrnoError(info.Env(), ("open(" + path + ")").c_str(), errno);
  return Napi::Number::New(info.Env(), fd);
}

// netnsEnter(fd): moves the calling thread (only) into that network namespace.
Napi::Value NetnsEnter(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0, "fd");
  if (setns(fd, CLONE_NEWNET) != 0) throw ErrnoError(info.Env(), "setns(CLONE_NEWNET)", errno);
  return info.Env().Undefined();
}

// memlockLimit() -> {soft, hard} in bytes, -1 for unlimited.
Napi::Value MemlockLimit(const Napi::CallbackInfo& info) {
  rlimit rl{};
  if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0) throw ErrnoError(info.Env(), "getrlimit(RLIMIT_MEMLOCK)", errno);
  Napi::Object r = Napi::Object::New(info.Env());
  r.Set("soft", rl.rlim_cur == RLIM_INFINITY ? -1.0 : static_cast<double>(rl.rlim_cur));
  r.Set("hard", rl.rlim_max == RLIM_INFINITY ? -1.0 : static_cast<double>(rl.rlim_max));
  return r;
}

// setMemlockLimit(soft, hard): -1 for unlimited.
Napi::Value SetMemlockLimit(const Napi::CallbackInfo& info) {
  int64_t soft = ArgInt64(info, 0, "soft"), hard = ArgInt64(info, 1, "hard");
  rlimit rl{soft < 0 ? RLIM_INFINITY : static_cast<rlim_t>(soft), hard < 0 ? RLIM_INFINITY : static_cast<rlim_t>(hard)};
  if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0) throw ErrnoError(info.Env(), "setrlimit(RLIMIT_MEMLOCK)", errno);
  return info.Env().Undefined();
}

// close(fd) for every fd the addons hand out (kvm, VM, vCPU, eventfd, epoll,
// memfd, XSK, BPF, sockets). A negative fd is a no-op; EINTR still closed it.
Napi::Value Close(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0, "fd");
  if (fd < 0) return info.Env().Undefined();
  if (close(fd) != 0 && errno != EINTR) throw ErrnoError(info.Env(), What("close", fd).c_str(), errno);
  return info.Env().Undefined();
}

// fdIsOpen(fd) -> whether fd names an open file in this process.
Napi::Value FdIsOpen(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0, "fd");
  return Napi::Boolean::New(info.Env(), fd >= 0 && fcntl(fd, F_GETFD) != -1);
}

// dup(fd) -> a new fd (close-on-exec) for the same open file.
Napi::Value Dup(const Napi::CallbackInfo& info) {
  int fd = fcntl(ArgInt(info, 0, "fd"), F_DUPFD_CLOEXEC, 3);
  if (fd < 0) throw ErrnoError(info.Env(), "dup", errno);
  return Napi::Number::New(info.Env(), fd);
}

// setCloexec(fd, on): whether fd survives exec (the helper hands fds down this way).
Napi::Value SetCloexec(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0, "fd");
  bool on = info.Length() > 1 && info[1].ToBoolean().Value();
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0 || fcntl(fd, F_SETFD, on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC)) != 0)
    throw ErrnoError(info.Env(), "fcntl(F_SETFD)", errno);
  return info.Env().Undefined();
}

}  // namespace

void InitHost(Napi::Env env, Napi::Object exports) {
  exports.Set("close", Napi::Function::New(env, Close));
  exports.Set("netnsOpen", Napi::Function::New(env, NetnsOpen));
  exports.Set("netnsEnter", Napi::Function::New(env, NetnsEnter));
  exports.Set("memlockLimit", Napi::Function::New(env, MemlockLimit));
  exports.Set("setMemlockLimit", Napi::Function::New(env, SetMemlockLimit));
  exports.Set("fdIsOpen", Napi::Function::New(env, FdIsOpen));
  exports.Set("dup", Napi::Function::New(env, Dup));
  exports.Set("setCloexec", Napi::Function::New(env, SetCloexec));
}

}  // namespace xdpvm

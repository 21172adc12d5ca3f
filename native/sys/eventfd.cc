// eventfd: the doorbells between the guest (ioeventfd, irqfd) and the I/O
// workers. read/write return -errno instead of throwing: EAGAIN on a
// non-blocking eventfd is the normal "nothing yet" on the hot path.
#include "sys.h"

#include <sys/eventfd.h>
#include <unistd.h>

namespace xdpvm {
namespace {

// eventfdCreate(initval, flags) -> fd; flags: EFD_NONBLOCK | EFD_SEMAPHORE (CLOEXEC always).
Napi::Value EventfdCreate(const Napi::CallbackInfo& info) {
  unsigned initval = static_cast<unsigned>(info.Length() > 0 ? ArgInt(info, 0, "initval") : 0);
  int flags = info.Length() > 1 ? ArgInt(info, 1, "flags") : 0;
  int fd = eventfd(initval, (flags & (EFD_NONBLOCK | EFD_SEMAPHORE)) | EFD_CLOEXEC);
  if (fd < 0) throw ErrnoError(info.Env(), "eventfd", errno);
  return Napi::Number::New(info.Env(), fd);
}

// eventfdRead(fd) -> the counter (then reset, or 1 in semaphore mode) or -errno.
Napi::Value EventfdRead(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0, "fd");
  uint64_t v = 0;
  ssize_t r = read(fd, &v, sizeof v);
  if (r != static_cast<ssize_t>(sizeof v)) return Napi::Number::New(info.Env(), r < 0 ? -errno : -EIO);
  return Napi::Number::New(info.Env(), static_cast<double>(v));
}

// eventfdWrite(fd, value) -> 0 or -errno.
Napi::Value EventfdWrite(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0, "fd");
  int64_t value = info.Length() > 1 ? ArgInt64(info, 1, "value") : 1;
  uint64_t v = static_cast<uint64_t>(value);
  ssize_t r = write(fd, &v, sizeof v);
  if (r != static_cast<ssize_t>(sizeof v)) return Napi::Number::New(info.Env(), r < 0 ? -errno : -EIO);
  return Napi::Number::New(info.Env(), 0);
}

}  // namespace

void InitEventfd(Napi::Env env, Napi::Object exports) {
  exports.Set("eventfdCreate", Napi::Function::New(env, EventfdCreate));
  exports.Set("eventfdRead", Napi::Function::New(env, EventfdRead));
  exports.Set("eventfdWrite", Napi::Function::New(env, EventfdWrite));
}

}  // namespace xdpvm

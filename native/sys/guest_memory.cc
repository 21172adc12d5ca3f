// Guest RAM mappings: anonymous, or memfd-backed so that a vhost-user
// front-end or back-end in another process can map the same pages.
#include "sys.h"
#include "../common/mapping.h"

#include <sys/mman.h>
#include <unistd.h>

namespace xdpvm {
namespace {

constexpr int64_t kHugePage = int64_t{2} << 20;

int64_t ArgLength(const Napi::CallbackInfo& info, bool huge) {
  int64_t len = ArgInt64(info, 0, "size");
  if (len <= 0 || len > (int64_t{1} << 40)) throw Napi::RangeError::New(info.Env(), "guest memory size out of range");
  // munmap of a hugetlb mapping needs whole huge pages; refuse a size that would be rounded.
  int64_t unit = huge ? kHugePage : sysconf(_SC_PAGESIZE);
  if (len % unit != 0) throw Napi::RangeError::New(info.Env(), "guest memory size must be a multiple of the page size");
  return len;
}

// guestMemory(size, hugepages): lazily populated (MAP_NORESERVE: a large
// guest costs only the pages it touches).
Napi::Value GuestMemory(const Napi::CallbackInfo& info) {
  bool huge = info.Length() > 1 && info[1].ToBoolean().Value();
  int64_t len = ArgLength(info, huge);
  int flags = MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE | (huge ? MAP_HUGETLB : 0);
  void* p = mmap(nullptr, static_cast<size_t>(len), PROT_READ | PROT_WRITE, flags, -1, 0);
  if (p == MAP_FAILED) throw ErrnoError(info.Env(), huge ? "mmap(guest memory, MAP_HUGETLB)" : "mmap(guest memory)", errno);
  return WrapMapping(info.Env(), p, static_cast<size_t>(len));
}

// guestMemoryMemfd(size, hugepages, name) -> { fd, buffer }. The caller owns
// both: unmap(buffer) and close(fd).
Napi::Value GuestMemoryMemfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool huge = info.Length() > 1 && info[1].ToBoolean().Value();
  int64_t len = ArgLength(info, huge);
  std::string name = info.Length() > 2 && info[2].IsString() ? ArgString(info, 2, "name") : "xdpvm-guest-ram";
  int fd = memfd_create(name.c_str(), MFD_CLOEXEC | (huge ? MFD_HUGETLB : 0));
  if (fd < 0) throw ErrnoError(env, "memfd_create", errno);
  if (ftruncate(fd, len) != 0) {
    int err = errno;
    close(fd);
    throw ErrnoError(env, "ftruncate(memfd)", err);
  }
  void* p = mmap(nullptr, static_cast<size_t>(len), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
  if (p == MAP_FAILED) {
    int err = errno;
    close(fd);
    throw ErrnoError(env, "mmap(memfd)", err);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, fd));
  out.Set("buffer", WrapMapping(env, p, static_cast<size_t>(len)));
  return out;
}

}  // namespace

void InitGuestMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("guestMemory", Napi::Function::New(env, GuestMemory));
  exports.Set("guestMemoryMemfd", Napi::Function::New(env, GuestMemoryMemfd));
}

}  // namespace xdpvm

#include "mapping.h"
#include "napi_util.h"

#include <sys/mman.h>
#include <unistd.h>

namespace xdpvm {
namespace {

size_t PageSize() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)); }

// mapAnonymous(bytes, hugepages): zeroed, page-aligned, populated memory
// (UMEMs, which the kernel pins at registration anyway). Private: every thread
// of the process sees it, and private pages fault in far faster than shared
// (shmem) ones: 32 MiB populated in ~19 ms instead of ~33 ms on a PVM host,
// which sat on the path to the first packet. MADV_DONTFORK: a child process
// (they only exec) must neither share nor copy it, and pinned private pages
// would otherwise be copied at fork.
Napi::Value MapAnonymous(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t len = ArgInt64(info, 0, "length");
  bool huge = info.Length() > 1 && info[1].ToBoolean().Value();
  if (len <= 0 || len > (int64_t{1} << 40)) throw Napi::RangeError::New(env, "mapping length out of range");
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE;
  if (huge) flags |= MAP_HUGETLB;
  void* p = mmap(nullptr, static_cast<size_t>(len), PROT_READ | PROT_WRITE, flags, -1, 0);
  if (p == MAP_FAILED) throw ErrnoError(env, huge ? "mmap(MAP_HUGETLB)" : "mmap", errno);
  if (madvise(p, static_cast<size_t>(len), MADV_DONTFORK) != 0) {
    int err = errno;
    munmap(p, static_cast<size_t>(len));
    throw ErrnoError(env, "madvise(MADV_DONTFORK)", err);
  }
  return WrapMapping(env, p, static_cast<size_t>(len));
}

// mapFd(fd, offset, length): a shared mapping of a file or socket (memfd,
// XSK ring offsets).
Napi::Value MapFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, "fd");
  int64_t off = ArgInt64(info, 1, "offset");
  int64_t len = ArgInt64(info, 2, "length");
  if (len <= 0 || off < 0) throw Napi::RangeError::New(env, "mapping offset/length out of range");
  void* p = mmap(nullptr, static_cast<size_t>(len), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                 static_cast<off_t>(off));
  if (p == MAP_FAILED) throw ErrnoError(env, "mmap", errno);
  return WrapMapping(env, p, static_cast<size_t>(len));
}

// unmap(buffer): munmap and detach. Idempotent on an already detached buffer.
Napi::Value Unmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) throw Napi::TypeError::New(env, "expected an ArrayBuffer");
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  void* p = ab.Data();
  size_t len = ab.ByteLength();
  if (p == nullptr || len == 0) return env.Undefined();
  if (reinterpret_cast<uintptr_t>(p) % PageSize() != 0) throw Napi::Error::New(env, "not a mapping");
  ab.Detach();
  if (munmap(p, len) != 0) throw ErrnoError(env, "munmap", errno);
  return env.Undefined();
}

// addressOf(buffer): the mapping's address, for Alias() in another thread.
Napi::Value AddressOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) throw Napi::TypeError::New(env, "expected an ArrayBuffer");
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  return Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(ab.Data())));
}

// alias(address, length): an ArrayBuffer over pages mapped by another thread
// of this process (worker_threads share the address space). Never unmapped
// through the alias.
Napi::Value Alias(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsBigInt()) throw Napi::TypeError::New(env, "expected (bigint address, length)");
  bool lossless = false;
  uint64_t addr = info[0].As<Napi::BigInt>().Uint64Value(&lossless);
  int64_t len = ArgInt64(info, 1, "length");
  if (!lossless || addr == 0 || addr % PageSize() != 0 || len <= 0) throw Napi::RangeError::New(env, "bad alias");
  return Napi::ArrayBuffer::New(env, reinterpret_cast<void*>(addr), static_cast<size_t>(len));
}

}  // namespace

Napi::ArrayBuffer WrapMapping(Napi::Env env, void* addr, size_t len) {
  // No finalizer: lifetime is explicit (Unmap), because other threads may alias it.
  return Napi::ArrayBuffer::New(env, addr, len);
}

void InitMapping(Napi::Env env, Napi::Object exports) {
  exports.Set("mapAnonymous", Napi::Function::New(env, MapAnonymous));
  exports.Set("mapFd", Napi::Function::New(env, MapFd));
  exports.Set("unmap", Napi::Function::New(env, Unmap));
  exports.Set("addressOf", Napi::Function::New(env, AddressOf));
  exports.Set("alias", Napi::Function::New(env, Alias));
}

}  // namespace xdpvm

#include "mapping.h"
#include "napi_util.h"

#include <cstdint>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

namespace xdpvm {
namespace {

size_t PageSize() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)); }

// mapAnonymous(bytes, pages): zeroed, page-aligned, populated memory (UMEMs,
// which the kernel pins at registration anyway). Private: every thread of the
// process sees it, and private pages fault in far faster than shared (shmem)
// ones. pages: "base" (4 KiB), "thp" (2 MiB-aligned, MADV_HUGEPAGE, best
// effort) or "hugetlb" (reserved huge pages). The caller chooses: a THP region
// is fewer TLB entries but, where the kernel hands 2 MiB blocks it reported free
// to a hypervisor (virtio-balloon free page reporting), each block faults back
// in from the hypervisor (~3 ms a MiB against ~0.5 for 4 KiB pages, measured on
// a PVM host). MADV_DONTFORK: a child process (they only exec) must neither
// share nor copy it, and pinned private pages would otherwise be copied at fork.
constexpr size_t kHugePage = size_t{2} << 20;

enum class Pages { kBase, kThp, kHugetlb };

void* MapPrivate(size_t len, Pages pages) {
  if (pages == Pages::kHugetlb) return mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE | MAP_HUGETLB, -1, 0);
  if (pages == Pages::kBase || len < kHugePage)
    return mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  // Over-map by one huge page and trim, so that the region starts on a huge-page boundary.
  size_t span = len + kHugePage;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return MAP_FAILED;
  uintptr_t start = (reinterpret_cast<uintptr_t>(raw) + kHugePage - 1) & ~(kHugePage - 1);
  size_t head = start - reinterpret_cast<uintptr_t>(raw);
  if (head > 0) munmap(raw, head);
  if (span - head - len > 0) munmap(reinterpret_cast<void*>(start + len), span - head - len);
  void* p = reinterpret_cast<void*>(start);
  madvise(p, len, MADV_HUGEPAGE);  // only a hint: 4 KiB pages if THP is off
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
  if (madvise(p, len, MADV_POPULATE_WRITE) != 0) {
    // Before Linux 5.14: fault every page in by hand.
    volatile uint8_t* b = static_cast<volatile uint8_t*>(p);
    for (size_t off = 0; off < len; off += PageSize()) b[off] = 0;
  }
  return p;
}

Napi::Value MapAnonymous(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t len = ArgInt64(info, 0, "length");
  std::string kind = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  Pages pages;
  if (kind == "base") pages = Pages::kBase;
  else if (kind == "thp") pages = Pages::kThp;
  else if (kind == "hugetlb") pages = Pages::kHugetlb;
  else throw Napi::TypeError::New(env, "pages must be 'base', 'thp' or 'hugetlb'");
  if (len <= 0 || len > (int64_t{1} << 40)) throw Napi::RangeError::New(env, "mapping length out of range");
  void* p = MapPrivate(static_cast<size_t>(len), pages);
  if (p == MAP_FAILED) throw ErrnoError(env, pages == Pages::kHugetlb ? "mmap(MAP_HUGETLB)" : "mmap", errno);
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

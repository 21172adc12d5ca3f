// Batched memory copies: TypeScript validates every guest range, then hands
// a whole batch of (destination, source, length) triples over in one call,
// instead of building a view per packet. The native side still refuses any
// range outside memory registered for copying (guest RAM regions, UMEMs),
// so a logic error cannot become a stray write.
#include "sys.h"

#include <atomic>
#include <cstring>
#include <mutex>

namespace xdpvm {
namespace {

struct Range {
  std::atomic<uintptr_t> base;
  std::atomic<size_t> length;
  size_t refs;  // under `writer`
};

// Fixed storage so readers (any thread) never see a reallocation. A slot is
// filled base first, then length (release); a reader loads length (acquire)
// then base. Unregistered slots have length 0 and are reused.
constexpr size_t kMaxRanges = 1024;
constexpr double kTwoPow53 = 9007199254740992.0;
Range ranges[kMaxRanges];
std::atomic<size_t> count{0};
std::mutex writer;

// [p, p + len) lies inside [rb, rb + rl) (no overflow: every step compares or subtracts smaller from larger).
inline bool Within(uintptr_t p, size_t len, uintptr_t rb, size_t rl) { return p >= rb && len <= rl && p - rb <= rl - len; }

bool Inside(size_t i, uintptr_t p, size_t len) {
  size_t rl = ranges[i].length.load(std::memory_order_acquire);
  if (rl == 0) return false;
  return Within(p, len, ranges[i].base.load(std::memory_order_relaxed), rl);
}

// `hint` is the slot that matched last time for this operand (a batch copies
// between the same two ranges over and over); it only orders the search.
bool Allowed(uintptr_t p, size_t len, size_t& hint) {
  size_t n = count.load(std::memory_order_acquire);
  if (hint < n && Inside(hint, p, len)) return true;
  for (size_t i = 0; i < n; i++)
    if (Inside(i, p, len)) {
      hint = i;
      return true;
    }
  return false;
}

// The range one operand matched last in this copyBatch call: most ops of a batch fall in the same two (one guest
// region, one UMEM), so they are compared with it before the registry is searched. Valid for one call only (a
// range may be unregistered between calls); empty (length 0) matches nothing.
struct LastMatch {
  uintptr_t base = 0;
  size_t length = 0;
};

inline bool AllowedCached(uintptr_t p, size_t len, size_t& hint, LastMatch& last) {
  if (last.length != 0 && Within(p, len, last.base, last.length)) return true;
  if (!Allowed(p, len, hint)) return false;
  last.length = ranges[hint].length.load(std::memory_order_acquire);
  last.base = ranges[hint].base.load(std::memory_order_relaxed);
  return true;
}

Bytes BufferArg(const Napi::CallbackInfo& info) {
  if (info.Length() > 0 && info[0].IsArrayBuffer()) {
    Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
    return {static_cast<uint8_t*>(ab.Data()), ab.ByteLength()};
  }
  return ArgBytes(info, 0, "buffer");
}

// copyRegister(buffer) -> the buffer's address (a number < 2^53). Counted:
// each registration is undone by one copyUnregister.
Napi::Value Register(const Napi::CallbackInfo& info) {
  Bytes b = BufferArg(info);
  uintptr_t base = reinterpret_cast<uintptr_t>(b.data);
  std::lock_guard<std::mutex> lock(writer);
  size_t n = count.load(std::memory_order_relaxed);
  size_t freeSlot = kMaxRanges;
  for (size_t i = 0; i < n; i++) {
    size_t rl = ranges[i].length.load(std::memory_order_relaxed);
    if (rl == b.length && ranges[i].base.load(std::memory_order_relaxed) == base) {
      ranges[i].refs++;
      return Napi::Number::New(info.Env(), static_cast<double>(base));
    }
    if (rl == 0 && freeSlot == kMaxRanges) freeSlot = i;
  }
  if (freeSlot == kMaxRanges) {
    if (n == kMaxRanges) throw Napi::Error::New(info.Env(), "copyRegister: too many registered ranges");
    freeSlot = n;
    count.store(n + 1, std::memory_order_release);
  }
  ranges[freeSlot].refs = 1;
  ranges[freeSlot].base.store(base, std::memory_order_relaxed);
  ranges[freeSlot].length.store(b.length, std::memory_order_release);
  return Napi::Number::New(info.Env(), static_cast<double>(base));
}

// copyUnregister(buffer): drops one registration; the range stops being
// allowed when the last one is gone (call before the memory goes away).
Napi::Value Unregister(const Napi::CallbackInfo& info) {
  Bytes b = BufferArg(info);
  uintptr_t base = reinterpret_cast<uintptr_t>(b.data);
  std::lock_guard<std::mutex> lock(writer);
  size_t n = count.load(std::memory_order_relaxed);
  for (size_t i = 0; i < n; i++)
    if (ranges[i].base.load(std::memory_order_relaxed) == base && ranges[i].length.load(std::memory_order_relaxed) == b.length) {
      if (--ranges[i].refs == 0) ranges[i].length.store(0, std::memory_order_release);
      break;
    }
  return info.Env().Undefined();
}

// copyBatch(ops Float64Array [dst, src, len]*, n): memmove each, in order;
// throws if any op is outside registered memory (then nothing is copied).
Napi::Value CopyBatch(const Napi::CallbackInfo& info) {
  Napi::Float64Array ops = info[0].As<Napi::Float64Array>();
  uint32_t n = info[1].As<Napi::Number>().Uint32Value();
  if (static_cast<size_t>(n) * 3 > ops.ElementLength()) throw Napi::RangeError::New(info.Env(), "copyBatch: more ops than given");
  const double* first = ops.Data();
  // The hints live per thread; read into locals once, as every access to a thread_local of a shared object is a
  // __tls_get_addr call (it was a quarter of this function's time when taken per op).
  thread_local size_t dstHintOfThread = 0, srcHintOfThread = 0;
  size_t dstHint = dstHintOfThread, srcHint = srcHintOfThread;
  // Pass 1 checks every op and prefetches its first source lines: the sources
  // are guest buffers another CPU just wrote, so each is a cache miss, and
  // issuing them all before the copies overlaps the misses instead of taking
  // them one memmove at a time.
  const double* op = first;
  LastMatch dstLast, srcLast;
  for (uint32_t i = 0; i < n; i++, op += 3) {
    // Casting a negative, NaN or huge double to an integer is undefined: refuse those first.
    if (!(op[0] >= 0 && op[0] < kTwoPow53 && op[1] >= 0 && op[1] < kTwoPow53 && op[2] >= 0 && op[2] < kTwoPow53))
      throw Napi::RangeError::New(info.Env(), "copyBatch: address or length is not an integer below 2^53");
    uintptr_t dst = static_cast<uintptr_t>(op[0]);
    uintptr_t src = static_cast<uintptr_t>(op[1]);
    size_t len = static_cast<size_t>(op[2]);
    if (!AllowedCached(dst, len, dstHint, dstLast) || !AllowedCached(src, len, srcHint, srcLast))
      throw Napi::RangeError::New(info.Env(), "copyBatch: range outside registered memory");
    if (len > 0) {
      const char* s = reinterpret_cast<const char*>(src);
      __builtin_prefetch(s);
      __builtin_prefetch(s + len - 1);
    }
  }
  dstHintOfThread = dstHint;
  srcHintOfThread = srcHint;
  op = first;
  for (uint32_t i = 0; i < n; i++, op += 3)
    memmove(reinterpret_cast<void*>(static_cast<uintptr_t>(op[0])), reinterpret_cast<const void*>(static_cast<uintptr_t>(op[1])), static_cast<size_t>(op[2]));
  return info.Env().Undefined();
}

}  // namespace

void InitCopyBatch(Napi::Env env, Napi::Object exports) {
  exports.Set("copyRegister", Napi::Function::New(env, Register));
  exports.Set("copyUnregister", Napi::Function::New(env, Unregister));
  exports.Set("copyBatch", Napi::Function::New(env, CopyBatch));
}

}  // namespace xdpvm

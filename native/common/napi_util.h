// Helpers shared by the native addons: errno-carrying errors and argument checks.
#pragma once
#include <napi.h>
#include <cerrno>
#include <cstring>
#include <string>

namespace xdpvm {

// Throws a JS Error whose message names the failing call and whose `code`
// is the errno name, so TypeScript can turn it into an option-specific error.
inline Napi::Error ErrnoError(Napi::Env env, const char* what, int err) {
  std::string msg = std::string(what) + ": " + strerror(err);
  Napi::Error e = Napi::Error::New(env, msg);
  const char* name = strerrorname_np(err);
  e.Set("code", Napi::String::New(env, name ? name : "EUNKNOWN"));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, what));
  return e;
}

inline int32_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsNumber())
    throw Napi::TypeError::New(info.Env(), std::string("expected a number for ") + name);
  return info[i].As<Napi::Number>().Int32Value();
}

inline int64_t ArgInt64(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsNumber())
    throw Napi::TypeError::New(info.Env(), std::string("expected a number for ") + name);
  return info[i].As<Napi::Number>().Int64Value();
}

inline std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsString())
    throw Napi::TypeError::New(info.Env(), std::string("expected a string for ") + name);
  return info[i].As<Napi::String>().Utf8Value();
}

// A byte range from a TypedArray or ArrayBuffer argument.
struct Bytes {
  uint8_t* data;
  size_t length;
};

inline Bytes ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() > i && info[i].IsTypedArray()) {
    Napi::TypedArray ta = info[i].As<Napi::TypedArray>();
    Napi::ArrayBuffer ab = ta.ArrayBuffer();
    return {static_cast<uint8_t*>(ab.Data()) + ta.ByteOffset(), ta.ByteLength()};
  }
  if (info.Length() > i && info[i].IsArrayBuffer()) {
    Napi::ArrayBuffer ab = info[i].As<Napi::ArrayBuffer>();
    return {static_cast<uint8_t*>(ab.Data()), ab.ByteLength()};
  }
  throw Napi::TypeError::New(info.Env(), std::string("expected bytes for ") + name);
}

// "call(fd N)", for error messages that name the fd.
inline std::string What(const char* call, int fd) { return std::string(call) + "(fd " + std::to_string(fd) + ")"; }

}  // namespace xdpvm

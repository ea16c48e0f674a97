// Node-API boundary of the preprocessing kernels: typed arrays and numbers in, the caller's typed array
// written. Arguments were validated in TypeScript; the kernels check sizes again and report failures as
// errors with a code, never by crashing.
#include <napi.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "json_numbers.h"
#include "preprocess.h"
#ifdef QUIVER_WITH_JPEG
#include "jpeg.h"
#endif

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#ifdef QUIVER_WITH_CUDA
#include "cuda_api.h"
#endif

namespace {

using quiver::Affine;
using quiver::CropRect;
using quiver::KernelError;
using quiver::Output;
using quiver::OutputType;
using quiver::Placement;
using quiver::SourceImage;

// Geometry layout shared with src/preprocess/native.ts.
enum Geometry {
  kWidth, kHeight, kChannels, kCropX, kCropY, kCropWidth, kCropHeight,
  kTensorWidth, kTensorHeight, kContentWidth, kContentHeight, kPadLeft, kPadTop, kBgr, kCpuKernels, kGeometrySize
};
// Affine layout: a[3], b[3], pad[3].
constexpr size_t kAffineSize = 9;

struct Job {
  SourceImage src;
  CropRect crop;
  Placement place;
  Affine affine;
  Output out;
  quiver::CpuKernels cpuKernels;
};

Napi::Error ArgumentError(Napi::Env env, const std::string& message) {
  Napi::Error error = Napi::TypeError::New(env, message);
  error.Set("code", Napi::String::New(env, "ERR_QUIVER_NATIVE_ARGUMENT"));
  return error;
}

Napi::Error KernelFailure(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

// Reads (src, geometry, affine, out, offset) starting at argument `first`.
Job ReadJob(const Napi::CallbackInfo& info, size_t first) {
  Napi::Env env = info.Env();
  if (info.Length() < first + 5) throw ArgumentError(env, "expected (src, geometry, affine, out, offset)");
  if (!info[first].IsTypedArray() || info[first].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw ArgumentError(env, "src must be a Uint8Array");
  }
  if (!info[first + 1].IsTypedArray() || info[first + 1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    throw ArgumentError(env, "geometry must be an Int32Array");
  }
  if (!info[first + 2].IsTypedArray() || info[first + 2].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw ArgumentError(env, "affine must be a Float32Array");
  }
  if (!info[first + 3].IsTypedArray()) throw ArgumentError(env, "out must be a Float32Array or Uint16Array");
  if (!info[first + 4].IsNumber()) throw ArgumentError(env, "offset must be a number");
  auto src = info[first].As<Napi::Uint8Array>();
  auto geometry = info[first + 1].As<Napi::Int32Array>();
  auto affine = info[first + 2].As<Napi::Float32Array>();
  auto out = info[first + 3].As<Napi::TypedArray>();
  if (geometry.ElementLength() != kGeometrySize) throw ArgumentError(env, "geometry must hold 15 values");
  if (affine.ElementLength() != kAffineSize) throw ArgumentError(env, "affine must hold 9 values");
  const double offset = info[first + 4].As<Napi::Number>().DoubleValue();
  if (!(offset >= 0) || offset > 9007199254740991.0) throw ArgumentError(env, "offset must be a whole number >= 0");

  Job job{};
  const int32_t* g = geometry.Data();
  job.src = {src.Data(), src.ByteLength(), g[kWidth], g[kHeight], g[kChannels]};
  job.crop = {g[kCropX], g[kCropY], g[kCropWidth], g[kCropHeight]};
  job.place = {g[kTensorWidth], g[kTensorHeight], g[kContentWidth], g[kContentHeight], g[kPadLeft], g[kPadTop]};
  const float* a = affine.Data();
  for (int c = 0; c < 3; c++) {
    job.affine.a[c] = a[c];
    job.affine.b[c] = a[3 + c];
    job.affine.pad[c] = a[6 + c];
  }
  job.affine.bgr = g[kBgr] != 0;
  if (g[kCpuKernels] < 0 || g[kCpuKernels] > static_cast<int32_t>(quiver::CpuKernels::Avx512Vbmi)) throw ArgumentError(env, "cpu kernels must be 0, 1 or 2");
  job.cpuKernels = static_cast<quiver::CpuKernels>(g[kCpuKernels]);
  if (out.TypedArrayType() == napi_float32_array) {
    auto f = out.As<Napi::Float32Array>();
    job.out = {f.Data(), f.ElementLength(), static_cast<size_t>(offset), OutputType::Float32};
  } else if (out.TypedArrayType() == napi_uint16_array) {
    auto h = out.As<Napi::Uint16Array>();
    job.out = {h.Data(), h.ElementLength(), static_cast<size_t>(offset), OutputType::Float16};
  } else {
    throw ArgumentError(env, "out must be a Float32Array (float32) or Uint16Array (float16 bits)");
  }
  try {
    quiver::ValidateArguments(job.src, job.crop, job.place, job.out);
  } catch (const KernelError& e) {
    throw KernelFailure(env, e.code, e.what());
  }
  return job;
}

Napi::Value PreprocessSync(const Napi::CallbackInfo& info) {
  Job job = ReadJob(info, 0);
  try {
    quiver::PreprocessImage(job.src, job.crop, job.place, job.affine, job.out, job.cpuKernels);
  } catch (const KernelError& e) {
    throw KernelFailure(info.Env(), e.code, e.what());
  } catch (const std::exception& e) {
    throw KernelFailure(info.Env(), "ERR_QUIVER_NATIVE_FAILED", e.what());
  }
  return info.Env().Undefined();
}

// Runs a job off the JavaScript thread; the typed arrays stay referenced until it ends.
class PreprocessWorker : public Napi::AsyncWorker {
 public:
  using Run = std::function<void(const Job&)>;
  PreprocessWorker(Napi::Env env, const Napi::CallbackInfo& info, size_t first, Job job, Run run)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), job_(job), run_(std::move(run)) {
    for (size_t i = first; i < first + 4; i++) refs_.push_back(Napi::Persistent(info[i].As<Napi::Object>()));
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      run_(job_);
    } catch (const KernelError& e) {
      code_ = e.code;
      SetError(e.what());
    } catch (const std::exception& e) {
      code_ = "ERR_QUIVER_NATIVE_FAILED";
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& error) override {
    deferred_.Reject(KernelFailure(Env(), code_.empty() ? "ERR_QUIVER_NATIVE_FAILED" : code_, error.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Job job_;
  Run run_;
  std::vector<Napi::ObjectReference> refs_;
  std::string code_;
};

Napi::Value Preprocess(const Napi::CallbackInfo& info) {
  Job job = ReadJob(info, 0);
  auto* worker = new PreprocessWorker(info.Env(), info, 0, job, [](const Job& j) {
    quiver::PreprocessImage(j.src, j.crop, j.place, j.affine, j.out, j.cpuKernels);
  });
  worker->Queue();
  return worker->Promise();
}

#ifdef QUIVER_WITH_CUDA
class CudaStream : public Napi::ObjectWrap<CudaStream> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "CudaStream", {
      InstanceMethod<&CudaStream::Preprocess>("preprocess"),
      InstanceMethod<&CudaStream::Destroy>("destroy"),
      InstanceMethod<&CudaStream::Trim>("trim"),
      InstanceMethod<&CudaStream::Benchmark>("benchmark"),
      InstanceAccessor<&CudaStream::DeviceBytes>("deviceBytes"),
      InstanceAccessor<&CudaStream::PinnedBytes>("pinnedBytes"),
    });
  }

  explicit CudaStream(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CudaStream>(info) {
    const int device = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
    try {
      context_ = std::make_shared<quiver::cuda::StreamContext>(device);
    } catch (const KernelError& e) {
      throw KernelFailure(info.Env(), e.code, e.what());
    }
  }

 private:
  std::shared_ptr<quiver::cuda::StreamContext> Context(Napi::Env env) {
    if (!context_) throw KernelFailure(env, "ERR_QUIVER_CUDA_DESTROYED", "this CUDA stream was destroyed");
    return context_;
  }

  Napi::Value Preprocess(const Napi::CallbackInfo& info) {
    auto context = Context(info.Env());
    Job job = ReadJob(info, 0);
    auto* worker = new PreprocessWorker(info.Env(), info, 0, job, [context](const Job& j) {
      context->Preprocess(j.src, j.crop, j.place, j.affine, j.out);
    });
    worker->Queue();
    return worker->Promise();
  }

  // benchmark(src, geometry, affine, out, offset, iterations): synchronous, for bench/gpu.sh only.
  Napi::Value Benchmark(const Napi::CallbackInfo& info) {
    auto context = Context(info.Env());
    Job job = ReadJob(info, 0);
    const int iterations = info.Length() > 5 && info[5].IsNumber() ? info[5].As<Napi::Number>().Int32Value() : 100;
    try {
      auto t = context->Benchmark(job.src, job.crop, job.place, job.affine, job.out, iterations < 1 ? 1 : iterations);
      Napi::Object result = Napi::Object::New(info.Env());
      result.Set("kernelMs", t.kernelMs);
      result.Set("copyMs", t.copyMs);
      result.Set("bytesMoved", t.bytesMoved);
      return result;
    } catch (const KernelError& e) {
      throw KernelFailure(info.Env(), e.code, e.what());
    }
  }

  Napi::Value Trim(const Napi::CallbackInfo& info) {
    try {
      Context(info.Env())->Trim();
    } catch (const KernelError& e) {
      throw KernelFailure(info.Env(), e.code, e.what());
    }
    return info.Env().Undefined();
  }

  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    // Work already queued holds its own reference, so the buffers outlive it.
    context_.reset();
    return info.Env().Undefined();
  }

  Napi::Value DeviceBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), context_ ? static_cast<double>(context_->DeviceBytes()) : 0.0);
  }

  Napi::Value PinnedBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), context_ ? static_cast<double>(context_->PinnedBytes()) : 0.0);
  }

  std::shared_ptr<quiver::cuda::StreamContext> context_;
};

Napi::Value CudaMemoryInfo(const Napi::CallbackInfo& info) {
  const int device = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  try {
    auto mem = quiver::cuda::GetMemoryInfo(device);
    Napi::Object result = Napi::Object::New(info.Env());
    result.Set("free", Napi::Number::New(info.Env(), static_cast<double>(mem.freeBytes)));
    result.Set("total", Napi::Number::New(info.Env(), static_cast<double>(mem.totalBytes)));
    return result;
  } catch (const KernelError& e) {
    throw KernelFailure(info.Env(), e.code, e.what());
  }
}
#endif

// Hands freed heap pages back to the OS (glibc keeps them otherwise), so that resident memory tells
// what is really held: the memory budget measures model costs by it.
Napi::Value ReleaseFreeMemory(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__)
  // malloc_trim hands back free pages inside every arena but trims the top of the main arena only; the
  // top of this thread's arena (where a worker's sessions live) is trimmed by a free() that merges into
  // it while the trim threshold is low. The probe is below any mmap threshold, so it comes from the arena.
  // Setting the threshold also stops glibc from raising it (and the mmap threshold) after large frees,
  // which would keep freed model memory in the arenas; 128 KiB is glibc's starting value for both.
  mallopt(M_TRIM_THRESHOLD, 0);
  void* probe = malloc(96 * 1024);
  free(probe);
  mallopt(M_TRIM_THRESHOLD, 128 * 1024);
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

#ifdef QUIVER_WITH_JPEG
// decodeJpeg(src, scaleDenom, maxPixels) -> { data, width, height, channels }, on the calling thread: a
// worker thread is the unit of parallelism, so a decode there needs no hop to libuv's pool.
Napi::Value DecodeJpegSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      !info[1].IsNumber() || !info[2].IsNumber()) {
    throw ArgumentError(env, "decodeJpeg(src: Uint8Array, scaleDenom: number, maxPixels: number)");
  }
  auto src = info[0].As<Napi::Uint8Array>();
  try {
    quiver::DecodedImage image = quiver::DecodeJpeg(src.Data(), src.ByteLength(), info[1].As<Napi::Number>().Int32Value(), info[2].As<Napi::Number>().DoubleValue());
    Napi::Object result = Napi::Object::New(env);
    result.Set("data", Napi::Buffer<uint8_t>::Copy(env, image.pixels.data(), image.pixels.size()));
    result.Set("width", Napi::Number::New(env, image.width));
    result.Set("height", Napi::Number::New(env, image.height));
    result.Set("channels", Napi::Number::New(env, image.channels));
    return result;
  } catch (const KernelError& e) {
    throw KernelFailure(env, e.code, e.what());
  }
}
#endif

// scanNumberArray(src, at, float32, maxRank): { values?, dims, end } or null (not a rectangular number array).
Napi::Value ScanNumberArraySync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw ArgumentError(env, "scanNumberArray: expected (Uint8Array, at, float32, maxRank)");
  }
  Napi::Uint8Array src = info[0].As<Napi::Uint8Array>();
  const double at = info[1].As<Napi::Number>().DoubleValue();
  const int maxRank = info[3].As<Napi::Number>().Int32Value();
  if (!(at >= 0 && at < static_cast<double>(src.ByteLength())) || maxRank < 1 || maxRank > 64) {
    throw ArgumentError(env, "scanNumberArray: at must lie inside the bytes and maxRank be 1 to 64");
  }
  quiver::NumberArrayScan scan = quiver::ScanNumberArray(src.Data(), src.ByteLength(), static_cast<size_t>(at), info[2].ToBoolean().Value(), maxRank);
  if (!scan.ok) return env.Null();
  Napi::Object result = Napi::Object::New(env);
  if (scan.exact) {
    Napi::Float64Array values = Napi::Float64Array::New(env, scan.values.size());
    std::copy(scan.values.begin(), scan.values.end(), values.Data());
    result.Set("values", values);
  }
  Napi::Array dims = Napi::Array::New(env, scan.dims.size());
  for (size_t i = 0; i < scan.dims.size(); i++) dims.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(scan.dims[i])));
  result.Set("dims", dims);
  result.Set("end", Napi::Number::New(env, static_cast<double>(scan.end)));
  return result;
}

Napi::Value Capabilities(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object cpu = Napi::Object::New(env);
  cpu.Set("avx2", Napi::Boolean::New(env, quiver::CpuHasAvx2()));
  cpu.Set("kernels", Napi::String::New(env, quiver::CpuKernelsName(quiver::ActiveCpuKernels())));
  Napi::Object cuda = Napi::Object::New(env);
#ifdef QUIVER_WITH_CUDA
  auto probe = quiver::cuda::Probe();
  cuda.Set("compiled", Napi::Boolean::New(env, true));
  cuda.Set("deviceCount", Napi::Number::New(env, probe.deviceCount));
  if (!probe.error.empty()) cuda.Set("error", Napi::String::New(env, probe.error));
#else
  cuda.Set("compiled", Napi::Boolean::New(env, false));
  cuda.Set("deviceCount", Napi::Number::New(env, 0));
#endif
  Napi::Object result = Napi::Object::New(env);
#ifdef QUIVER_WITH_JPEG
  result.Set("jpeg", Napi::Boolean::New(env, true));
#else
  result.Set("jpeg", Napi::Boolean::New(env, false));
#endif
  result.Set("cpu", cpu);
  result.Set("cuda", cuda);
  return result;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("capabilities", Napi::Function::New(env, Capabilities));
  exports.Set("releaseFreeMemory", Napi::Function::New(env, ReleaseFreeMemory));
  exports.Set("preprocessSync", Napi::Function::New(env, PreprocessSync));
  exports.Set("preprocess", Napi::Function::New(env, Preprocess));
  exports.Set("scanNumberArray", Napi::Function::New(env, ScanNumberArraySync));
#ifdef QUIVER_WITH_JPEG
  exports.Set("decodeJpeg", Napi::Function::New(env, DecodeJpegSync));
#endif
#ifdef QUIVER_WITH_CUDA
  exports.Set("CudaStream", CudaStream::Define(env));
  exports.Set("cudaMemoryInfo", Napi::Function::New(env, CudaMemoryInfo));
#endif
  return exports;
}

}  // namespace

NODE_API_MODULE(quiver_native, Init)

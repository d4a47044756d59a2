// CUDA graph capture and replay (isthmus.h, "CUDA graphs"). The host emulation implements the
// same runtime calls by recording its launches, so this file is the same in both builds.
#include "status.h"

using namespace isthmus;

namespace {

int cuda_failure(const char *what, cudaError_t err) {
    cudaGetLastError();  // reported here; not left sticky for the next launch
    return fail(ISTHMUS_ERROR_CUDA, "%s: %s: %s", what, cudaGetErrorName(err), cudaGetErrorString(err));
}

}  // namespace

extern "C" {

int isthmus_graph_begin_capture(void *stream) {
    clear_error();
    const cudaError_t err = cudaStreamBeginCapture(static_cast<cudaStream_t>(stream), cudaStreamCaptureModeRelaxed);
    return err == cudaSuccess ? ISTHMUS_OK : cuda_failure("isthmus_graph_begin_capture: cudaStreamBeginCapture", err);
}

int isthmus_graph_end_capture(void *stream, void **graph) {
    clear_error();
    ISTHMUS_REQUIRE(graph != nullptr, "isthmus_graph_end_capture: graph is NULL");
    *graph = nullptr;
    cudaGraph_t captured = nullptr;
    cudaError_t err = cudaStreamEndCapture(static_cast<cudaStream_t>(stream), &captured);
    if (err != cudaSuccess) {
        if (captured != nullptr) cudaGraphDestroy(captured);
        return cuda_failure("isthmus_graph_end_capture: the capture failed (work that cannot be captured ran on the stream)", err);
    }
    cudaGraphExec_t exec = nullptr;
    err = cudaGraphInstantiate(&exec, captured, 0);
    cudaGraphDestroy(captured);  // the executable graph keeps what it needs
    if (err != cudaSuccess) return cuda_failure("isthmus_graph_end_capture: cudaGraphInstantiate", err);
    *graph = exec;
    return ISTHMUS_OK;
}

int isthmus_graph_launch(void *graph, void *stream) {
    clear_error();
    ISTHMUS_REQUIRE(graph != nullptr, "isthmus_graph_launch: graph is NULL");
    const cudaError_t err = cudaGraphLaunch(static_cast<cudaGraphExec_t>(graph), static_cast<cudaStream_t>(stream));
    return err == cudaSuccess ? ISTHMUS_OK : cuda_failure("isthmus_graph_launch: cudaGraphLaunch", err);
}

int isthmus_graph_destroy(void *graph) {
    clear_error();
    if (graph == nullptr) return ISTHMUS_OK;
    const cudaError_t err = cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(graph));
    return err == cudaSuccess ? ISTHMUS_OK : cuda_failure("isthmus_graph_destroy: cudaGraphExecDestroy", err);
}

}  // extern "C"

# Isthmus — the one entry point.
#
#   make native         nvcc -> build/native/libisthmus.so (CUDA runtime static)
#   make build          native + the jar (target/isthmus.jar, dependencies in target/lib)
#   make emulation      g++ -> build/emulation/libisthmus-emulated.so: the kernels on the CPU (host
#                       emulation, not a GPU), and its self-test
#   make test           build, then every test (GPU tests skip with their reason without a device),
#                       then the GPU tests again against the host emulation
#   make demo           the demo on the best backend (GPU if there is one, else CPU)
#   make bench          JMH benchmarks of the Java side, printed as a table
#   make device-bundle  build/device-bundle(.tar.xz): everything a run on a bare GPU machine needs
#   make perf-model     static performance model (estimates, not measurements) of every benchmark
#                       shape on an H100 and an H200 -> bench/results/perf-model/
#   make gpu-run-dry    the bundle unpacked and bench/gpu-run.sh run against the host emulation at
#                       tiny sizes, then its output checked (part of `make test`)
#   make clean
#
# Variables: ARCHS=release (sm_80/86/89/90 + PTX, the default for the jar) or ARCHS=sm_90 (fast,
# for CI and GPU runs); JAVA_HOME is used if it is a JDK >= 22, else the newest under /usr/lib/jvm.

SHELL := /bin/bash
.DEFAULT_GOAL := build
.DELETE_ON_ERROR:
# The native and emulated objects compile side by side: one job per core unless -j says otherwise.
ifeq ($(filter -j%,$(MAKEFLAGS)),)
  MAKEFLAGS += -j$(shell nproc)
endif

VERSION := 0.1.0
ARCHS ?= release

# ---- Java: a JDK >= 22 (FFM is final since 22) ---------------------------------------------------
jdk_feature = $(shell "$(1)/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p')
ifneq ($(JAVA_HOME),)
  ifeq ($(shell [ -x "$(JAVA_HOME)/bin/javac" ] && [ "$(call jdk_feature,$(JAVA_HOME))" -ge 22 ] 2>/dev/null && echo ok),ok)
    JDK := $(JAVA_HOME)
  endif
endif
ifeq ($(JDK),)
  JDK := $(shell for d in $$(ls -d /usr/lib/jvm/*/ 2>/dev/null); do d=$${d%/}; \
           [ -x "$$d/bin/javac" ] || continue; \
           v=$$("$$d/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p'); \
           [ -n "$$v" ] && [ "$$v" -ge 22 ] && echo "$$v $$d"; done | sort -n | tail -1 | cut -d' ' -f2)
endif
JAVA := $(JDK)/bin/java
MVN := JAVA_HOME=$(JDK) mvn -B -q -Dstyle.color=never
JAVA_FLAGS := --enable-native-access=ALL-UNNAMED

# ---- CUDA ---------------------------------------------------------------------------------------------
NVCC ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
NATIVE_DIR := build/native
LIB := $(NATIVE_DIR)/libisthmus.so
# A driver of every launcher, for compute-sanitizer on the GPU machine; built with the library so
# that a launcher whose signature changed breaks the build here, not there.
DRIVER := $(NATIVE_DIR)/sanitize_driver
ifeq ($(ARCHS),release)
  GENCODE := -gencode arch=compute_80,code=sm_80 -gencode arch=compute_86,code=sm_86 \
             -gencode arch=compute_89,code=sm_89 -gencode arch=compute_90,code=sm_90 \
             -gencode arch=compute_90,code=compute_90
  ARCH_LIST := sm_80 sm_86 sm_89 sm_90 +PTX compute_90
else
  GENCODE := -gencode arch=compute_90,code=sm_90
  ARCH_LIST := sm_90
endif
NVCC_FLAGS := -O3 -std=c++17 -Xcompiler -fPIC,-fvisibility=hidden -cudart static -lineinfo \
              --expt-relaxed-constexpr -Inative -Icuda \
              -DISTHMUS_VERSION_STRING='"$(VERSION)"' -DISTHMUS_ARCHITECTURES='"$(ARCH_LIST)"'
NATIVE_SOURCES := $(wildcard native/*.cu)
NATIVE_HEADERS := $(wildcard native/*.h cuda/*.cuh)
NATIVE_OBJ_DIR := $(NATIVE_DIR)/obj-$(ARCHS)
NATIVE_OBJECTS := $(patsubst native/%.cu,$(NATIVE_OBJ_DIR)/%.o,$(NATIVE_SOURCES))

# ---- host emulation: the same launchers and kernels as host C++ (native/emulation/) ----------------
# Needs g++, the toolkit's headers (cuda_runtime.h for the types, cuda_fp16.h / cuda_bf16.h) and
# x86-64 (the fibers' stack switch).
CUDA_INCLUDE ?= $(firstword $(foreach d,$(dir $(NVCC))../include /usr/local/cuda/include,$(if $(wildcard $(d)/cuda_runtime.h),$(d))))
EMULATION_DIR := build/emulation
EMULATION_LIB := $(EMULATION_DIR)/libisthmus-emulated.so
EMULATION_POSSIBLE := $(if $(CUDA_INCLUDE),$(if $(shell command -v g++),$(if $(filter x86_64,$(shell uname -m)),yes)))
EMULATION_FLAGS := -O2 -std=c++17 -Wall -Wno-unknown-pragmas -Wno-sign-compare -fno-extern-tls-init -Inative -Icuda -I$(CUDA_INCLUDE) -DISTHMUS_EMULATION \
                   -include native/emulation/cuda_emulation.h
EMULATION_HEADERS := $(NATIVE_HEADERS) $(wildcard native/emulation/*.h)
EMULATION_OBJ_DIR := $(EMULATION_DIR)/obj
EMULATION_SOURCES := $(filter-out %_test.cpp,$(wildcard native/emulation/*.cpp))
EMULATION_OBJECTS := $(patsubst native/emulation/%.cpp,$(EMULATION_OBJ_DIR)/emulation/%.o,$(EMULATION_SOURCES))
EMULATED_NATIVE_OBJECTS := $(patsubst native/%.cu,$(EMULATION_OBJ_DIR)/%.o,$(NATIVE_SOURCES))
EMULATION_SELF_TESTS := $(patsubst native/emulation/%.cpp,$(EMULATION_DIR)/%.passed,$(wildcard native/emulation/*_test.cpp))

.PHONY: emulation-race-demo native emulation build test demo bench bench-jar device-bundle gpu-run-dry perf-model perf-model-test clean check-jdk

check-jdk:
	@[ -n "$(JDK)" ] || { echo "error: no JDK >= 22 found (set JAVA_HOME or install one under /usr/lib/jvm)"; exit 1; }

# One object per source, so `make` compiles them side by side (the jobs default to the cores).
ifeq ($(NVCC),)
native:
	@echo "nvcc not found: building CPU-only (no libisthmus.so; the CUDA backend will be unavailable)"
	@rm -f $(LIB) $(DRIVER) $(NATIVE_DIR)/.stamp-*
else
native: $(NATIVE_DIR)/.stamp-$(ARCHS)

$(NATIVE_OBJ_DIR)/%.o: native/%.cu $(NATIVE_HEADERS) Makefile
	@mkdir -p $(@D)
	$(NVCC) $(NVCC_FLAGS) $(GENCODE) -c -o $@ $<

# The stamp names the architecture set, so switching ARCHS relinks from that set's objects.
$(NATIVE_DIR)/.stamp-$(ARCHS): $(NATIVE_OBJECTS) native/check/sanitize_driver.cu
	@rm -f $(NATIVE_DIR)/.stamp-*
	@echo "nvcc: libisthmus.so and the sanitizer driver for $(ARCH_LIST)"
	$(NVCC) $(GENCODE) -shared -cudart static -o $(LIB) $(NATIVE_OBJECTS)
	$(NVCC) -O2 -std=c++17 -cudart static -lineinfo -Inative $(GENCODE) -o $(DRIVER) native/check/sanitize_driver.cu \
	  -L$(NATIVE_DIR) -listhmus -Xlinker -rpath='$$ORIGIN'
	@touch $@
endif

# The self-tests (emulation, memory, mma) link the emulation's own objects and must pass before the
# library is linked from the same objects plus every native source compiled as host C++.
ifeq ($(EMULATION_POSSIBLE),yes)
emulation: $(EMULATION_DIR)/.stamp

$(EMULATION_OBJ_DIR)/%.o: native/%.cu $(EMULATION_HEADERS) Makefile
	@mkdir -p $(@D)
	g++ $(EMULATION_FLAGS) -fPIC -fvisibility=hidden -DISTHMUS_VERSION_STRING='"$(VERSION)"' \
	  -DISTHMUS_ARCHITECTURES='"host emulation"' -c -o $@ -x c++ $<

$(EMULATION_OBJ_DIR)/emulation/%.o: native/emulation/%.cpp $(EMULATION_HEADERS) Makefile
	@mkdir -p $(@D)
	g++ $(EMULATION_FLAGS) -fPIC -fvisibility=hidden -c -o $@ $<

# The self-tests' objects are kept (make would delete them as intermediate).
.SECONDARY: $(patsubst $(EMULATION_DIR)/%.passed,$(EMULATION_OBJ_DIR)/emulation/%.o,$(EMULATION_SELF_TESTS))

$(EMULATION_DIR)/%.passed: $(EMULATION_OBJ_DIR)/emulation/%.o $(EMULATION_OBJECTS) $(EMULATION_OBJ_DIR)/library.o
	g++ -o $(EMULATION_DIR)/$* $^
	$(EMULATION_DIR)/$*
	@touch $@

$(EMULATION_LIB): $(EMULATION_OBJECTS) $(EMULATED_NATIVE_OBJECTS) $(EMULATION_SELF_TESTS)
	@echo "g++: $(EMULATION_LIB) (host emulation, not a GPU)"
	g++ -shared -Wl,--no-undefined -o $@ $(EMULATION_OBJECTS) $(EMULATED_NATIVE_OBJECTS)

$(EMULATION_DIR)/.stamp: $(EMULATION_LIB)
	@touch $@
else
emulation:
	@echo "no g++, no CUDA toolkit headers or not x86-64: skipping the host emulation"
endif

# Shows the schedules at work on project code: the emulated library built again with one barrier of
# block_sum (cuda/common.cuh, RMSNorm's wide rows) dropped; RmsNormGpuTest must pass with the intact
# library under every schedule and fail with the broken one under at least one. Not part of `make test`.
RACE_DEMO := build/emulation-race-demo

emulation-race-demo: emulation build
	@mkdir -p $(RACE_DEMO)
	g++ $(EMULATION_FLAGS) -DISTHMUS_DROP_BLOCK_SUM_BARRIER -fPIC -fvisibility=hidden -shared -Wl,--no-undefined \
	  -DISTHMUS_VERSION_STRING='"$(VERSION)"' -DISTHMUS_ARCHITECTURES='"host emulation"' \
	  -o $(RACE_DEMO)/libisthmus-emulated.so -x c++ $(NATIVE_SOURCES) $(EMULATION_SOURCES)
	JAVA_HOME=$(JDK) mvn -B -q -ntp dependency:copy -Dartifact=$(JUNIT_CONSOLE) -DoutputDirectory=$(RACE_DEMO)
	@intact_failed=""; broken_failed=""; \
	for lib in $(EMULATION_LIB) $(RACE_DEMO)/libisthmus-emulated.so; do \
	  for schedule in forward reverse shuffle:7; do \
	    if ISTHMUS_EMULATION_SCHEDULE=$$schedule $(JAVA) $(JAVA_FLAGS) -Disthmus.library.path=$$lib -Disthmus.emulation=true \
	         -jar $(RACE_DEMO)/junit-platform-console-standalone-*.jar execute --disable-banner --details=none \
	         --class-path "target/test-classes:target/classes:$$(ls target/lib/*.jar | tr '\n' ':')" \
	         --select-class dev.isthmus.norm.RmsNormGpuTest > $(RACE_DEMO)/$$(basename $$(dirname $$lib))-$${schedule%%:*}.log 2>&1; \
	    then result=passes; else result=FAILS; fi; \
	    if grep -q "gpu tests skipped" $(RACE_DEMO)/$$(basename $$(dirname $$lib))-$${schedule%%:*}.log; then \
	      echo "RmsNormGpuTest did not run with $$lib"; exit 1; fi; \
	    echo "RmsNormGpuTest with $$lib under $$schedule: $$result"; \
	    if [ $$lib = $(EMULATION_LIB) ]; then [ $$result = passes ] || intact_failed="$$intact_failed $$schedule"; \
	    else [ $$result = FAILS ] && broken_failed="$$broken_failed $$schedule"; fi; \
	  done; \
	done; \
	[ -z "$$intact_failed" ] || { echo "the intact library failed under:$$intact_failed"; exit 1; }; \
	[ -n "$$broken_failed" ] || { echo "the missing barrier went unnoticed under every schedule"; exit 1; }; \
	echo "the missing barrier is caught under:$$broken_failed"

build: check-jdk native
	$(MVN) package -DskipTests

# The pom's second surefire run repeats the "gpu" tests against $(EMULATION_LIB) when it exists;
# then the GPU run itself is tried against it (gpu-run-dry), so the bundle keeps working between
# visits to a GPU.
test: check-jdk native emulation perf-model-test
	JAVA_HOME=$(JDK) mvn -B -ntp -Dstyle.color=never verify
	@if [ -f $(EMULATION_LIB) ] && [ -f $(LIB) ]; then $(MAKE) --no-print-directory gpu-run-dry; \
	 else echo "gpu-run-dry skipped: it needs nvcc (the bundle's library) and the host emulation"; fi

demo: build
	$(JAVA) $(JAVA_FLAGS) -jar target/isthmus.jar demo

# ---- static performance model: compiles native/*.cu for sm_90 itself (PTX, ptxas -v, SASS when a
# disassembler exists), so it needs nvcc but not the library; under a minute, cached in build/perf-model.
perf-model:
	@[ -n "$(NVCC)" ] || { echo "perf-model needs nvcc"; exit 1; }
	python3 bench/perf-model/perf_model.py --nvcc $(NVCC)
	@if [ -f bench/results/perf-model/before-estimates.csv ]; then python3 bench/perf-model/compare.py \
	  bench/results/perf-model/before-estimates.csv bench/results/perf-model/estimates.csv \
	  bench/results/perf-model/before-after.md --kernels '^(rmsnorm|selective-scan|selective-state-update|ssd-scan|ssd-state-update|causal-conv1d|attention-decode|attention-prefill|gemm-own|quant-gemv|moe-[a-z]+$$)|\[(align|combine)\]'; fi

# Its unit tests read hand-written listings only (no nvcc), in well under a second: part of make test.
perf-model-test:
	python3 -m unittest bench/perf-model/test_perf_model.py

# ---- benchmarks ------------------------------------------------------------------------------------
BENCH_JAR := bench/target/benchmarks.jar

# The benchmarks compile against the library installed in the local repository (the jar just built).
bench-jar: build
	$(MVN) install:install-file -Dfile=target/isthmus.jar -DpomFile=pom.xml
	$(MVN) -f bench/pom.xml package

bench: bench-jar
	$(JAVA) $(JAVA_FLAGS) -cp "$(BENCH_JAR):target/isthmus.jar:target/lib/*" dev.isthmus.bench.BenchMain

# ---- the GPU machine: one self-contained folder, run there by bench/gpu-run.sh OUTDIR ----------------
# It holds a jlink'ed Java runtime (the GPU machine may have no JDK), the jars, libisthmus.so and
# the sanitizer driver for sm_90, and the bench scripts. Nothing is built on the GPU machine.
BUNDLE := build/device-bundle
JUNIT_CONSOLE := org.junit.platform:junit-platform-console-standalone:1.11.4
# java.desktop: the demo draws its plot with Java2D (headless).
JRE_MODULES := java.base,java.desktop,java.logging,java.management,java.xml,jdk.unsupported,jdk.management,jdk.zipfs

device-bundle: check-jdk
	$(MAKE) --no-print-directory native ARCHS=sm_90
	$(MAKE) --no-print-directory bench-jar ARCHS=sm_90
	rm -rf $(BUNDLE) && mkdir -p $(BUNDLE)/lib $(BUNDLE)/native $(BUNDLE)/bench
	cp target/isthmus.jar target/isthmus-tests.jar target/lib/*.jar $(BENCH_JAR) $(BUNDLE)/lib/
	# The tokenizers jar carries a native library per platform; the GPU machine needs only linux-x86_64.
	zip -q -d $(BUNDLE)/lib/tokenizers-*.jar 'native/lib/linux-aarch64/*' 'native/lib/osx-*' 'native/lib/win-*'
	# JCuda's PTX compiler and NVRTC bindings (24 MB) are never called: the kernels come compiled.
	zip -q -d $(BUNDLE)/lib/jcuda-natives-*.jar 'lib/libJNvPTXCompiler-*' 'lib/libJNvrtc-*'
	JAVA_HOME=$(JDK) mvn -B -q -ntp dependency:copy -Dartifact=$(JUNIT_CONSOLE) -DoutputDirectory=$(BUNDLE)/lib
	cp $(LIB) $(DRIVER) $(BUNDLE)/native/
	cp -r bench/gpu-run.sh bench/report.py bench/check_gpu_run.py bench/peers $(BUNDLE)/bench/
	rm -rf $(BUNDLE)/bench/peers/__pycache__
	# The runtime's modules stay uncompressed: xz over the whole folder packs them far smaller
	# (about 22 MB against 39 MB for zip-9 inside and gzip outside), and the archive is what travels.
	$(JDK)/bin/jlink --add-modules $(JRE_MODULES) --strip-debug --no-header-files --no-man-pages \
	  --compress=zip-0 --output $(BUNDLE)/jre
	git rev-parse --short=12 HEAD > $(BUNDLE)/COMMIT
	@git diff --quiet HEAD || echo "dirty" >> $(BUNDLE)/COMMIT
	tar -C build -cf - device-bundle | xz -T0 -6 > $(BUNDLE).tar.xz
	@du -sh $(BUNDLE) $(BUNDLE).tar.xz

# ---- the dry run: the bundle as the GPU machine gets it, run against the host emulation -------------
GPU_RUN_DRY := build/gpu-run-dry

gpu-run-dry: emulation device-bundle
	@[ -f $(EMULATION_LIB) ] || { echo "gpu-run-dry needs the host emulation (make emulation)"; exit 1; }
	rm -rf $(GPU_RUN_DRY) && mkdir -p $(GPU_RUN_DRY)
	@unpacked=$$(mktemp -d) && tar -C $$unpacked -xJf $(BUNDLE).tar.xz && \
	  $$unpacked/device-bundle/bench/gpu-run.sh $(GPU_RUN_DRY)/out --deadline 600 --emulation $(abspath $(EMULATION_LIB)) \
	    > $(GPU_RUN_DRY)/console.txt 2>&1; status=$$?; \
	  tail -c 3000 $(GPU_RUN_DRY)/console.txt; rm -rf $$unpacked; \
	  python3 bench/check_gpu_run.py $(GPU_RUN_DRY)/out --bundle $(BUNDLE).tar.xz --run-status $$status

clean:
	rm -rf build target bench/target

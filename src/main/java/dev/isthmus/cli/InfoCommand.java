package dev.isthmus.cli;

import dev.isthmus.blas.Gemm;
import dev.isthmus.cuda.Cuda;
import dev.isthmus.cuda.HostEmulation;
import dev.isthmus.cuda.NativeLibrary;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;

/** What this installation can do: library, CUDA, devices, GEMM path. */
@Command(name = "info", description = "Show the native library, CUDA availability, devices and the active GEMM path.")
final class InfoCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        System.out.println("java            " + Runtime.version() + " (" + System.getProperty("java.vm.vendor") + ")");
        if (NativeLibrary.isLoaded()) {
            System.out.println("libisthmus      " + NativeLibrary.version() + " at " + NativeLibrary.path().orElseThrow());
            System.out.println("  built for     " + NativeLibrary.cudaArchitectures() + ", CUDA runtime " + cudaVersion(NativeLibrary.runtimeVersion())
                    + (HostEmulation.enabled() ? " (its headers; the runtime is emulated)" : " (static)"));
            int driver = NativeLibrary.driverVersion();
            System.out.println("  driver        " + (driver == 0 ? "none" : "CUDA " + cudaVersion(driver)));
        } else {
            System.out.println("libisthmus      not loaded: " + NativeLibrary.loadError());
        }
        Cuda.Availability cuda = Cuda.availability();
        if (cuda.available() && HostEmulation.enabled()) {
            System.out.println("cuda            host emulation: kernels run on the CPU, not on a GPU (" + cuda.deviceCount() + " emulated device)");
            for (int d = 0; d < cuda.deviceCount(); d++) System.out.println("  " + NativeLibrary.deviceProperties(d));
        } else if (cuda.available()) {
            System.out.println("cuda            available, " + cuda.deviceCount() + " device(s)");
            for (int d = 0; d < cuda.deviceCount(); d++) System.out.println("  " + NativeLibrary.deviceProperties(d));
        } else {
            System.out.println("cuda            unavailable: " + cuda.reason());
        }
        System.out.println("gemm on cuda    " + Gemm.cudaPath());
        System.out.println("best backend    " + (cuda.available() ? "cuda:0" : "cpu"));
        return 0;
    }

    private static String cudaVersion(int v) {
        return v / 1000 + "." + (v % 1000) / 10;
    }
}

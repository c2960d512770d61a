"""Build the C core (csrc/) and the Cython binding (aether_native/_core.pyx).

Metadata lives in pyproject.toml; this file only describes ext_modules. The C core is built as a
static library with strict warnings (-Wall -Wextra -Werror); the Cython-generated C file is built
with the same warnings but without -Werror, since it is generated code we do not edit.
"""

import glob
import sysconfig

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

STRICT = ["-std=gnu11", "-O2", "-g", "-Wall", "-Wextra", "-Werror", "-fno-strict-aliasing", "-fPIC"]
CORE_SOURCES = [
    "csrc/ring.c",
    "csrc/frames.c",
    "csrc/gil.c",
    "csrc/handler.c",
    "csrc/sampler.c",
    "csrc/codehook.c",
    "csrc/alloc.c",
    "csrc/counters.c",
    "csrc/got.c",
]

core_lib = (
    "aether_core",
    {
        "sources": CORE_SOURCES,
        "include_dirs": ["csrc", sysconfig.get_paths()["include"]],
        "cflags": STRICT,
    },
)

ext = Extension(
    "aether_native._core",
    sources=["aether_native/_core.pyx"],
    include_dirs=["csrc"],
    extra_compile_args=["-O2", "-g", "-Wall", "-Wno-unused-function"],
    depends=sorted(glob.glob("csrc/*.[ch]")),
)


class BuildExtWithCore(build_ext):
    """`build_ext` alone (e.g. `setup.py build_ext --inplace`) does not build C libraries first;
    the extension links against the core, so build it here."""

    def run(self) -> None:
        self.run_command("build_clib")
        super().run()

setup(
    cmdclass={"build_ext": BuildExtWithCore},
    libraries=[core_lib],
    ext_modules=cythonize(
        [ext],
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    ),
)

#!/usr/bin/env python3
"""Check gguf-py's dequantisation against ggml's own (the C `to_float` of each type's traits).

  python3 check_dequant_ggml.py FILE.gguf [...]

Calls ggml_get_type_traits() from the libggml-base.so that llama-cpp-python ships, via ctypes.
Struct layout assumed (ggml.h): {const char *type_name; int64 blck_size; int64
blck_size_interleave; size_t type_size; bool is_quantized; to_float; from_float_ref} — the
block size / type size read from it are asserted against gguf-py's table as a sanity check.
Prints the max |ggml - gguf-py| per tensor type (0.0 = bit-identical).
"""
import ctypes
import os
import sys

import numpy as np
import gguf
import llama_cpp

lib = ctypes.CDLL(os.path.join(os.path.dirname(llama_cpp.__file__), "lib", "libggml-base.so"))
lib.ggml_get_type_traits.restype = ctypes.c_void_p
lib.ggml_get_type_traits.argtypes = [ctypes.c_int]
TO_FLOAT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.c_int64)


def ggml_dequant(t):
    p = lib.ggml_get_type_traits(int(t.tensor_type))
    blck = ctypes.c_int64.from_address(p + 8).value
    tsize = ctypes.c_size_t.from_address(p + 24).value
    fn = ctypes.c_void_p.from_address(p + 40).value
    assert (blck, tsize) == gguf.GGML_QUANT_SIZES[t.tensor_type] and fn, t.tensor_type
    raw = np.ascontiguousarray(t.data).view(np.uint8)
    n = int(np.prod([int(s) for s in t.shape]))
    out = np.empty(n, np.float32)
    TO_FLOAT(fn)(raw.ctypes.data, out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), n)
    return out


for path in sys.argv[1:]:
    worst = {}
    for t in gguf.GGUFReader(path).tensors:
        ref = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
        if t.tensor_type == gguf.GGMLQuantizationType.F32:
            got = np.asarray(t.data, dtype=np.float32).reshape(-1)
        else:
            got = ggml_dequant(t)
        k = t.tensor_type.name
        worst[k] = max(worst.get(k, 0.0), float(np.max(np.abs(got - ref))))
    print(os.path.basename(path), "max |ggml - gguf-py| per type:", worst)

"""An exported azc model: its native library as a scikit-learn style estimator.

This file ships in every folder `azc export` writes, beside the library
(`libmodel.so`), its C header (`model.h`), the program (`program.az`), the
manifest (`manifest.json`) and, when the export was fitted, the learned state
(`state.npz`).  It needs only the standard library and numpy; it never
imports azc.

    import sys; sys.path.insert(0, "model")      # the exported folder
    import predictor
    m = predictor.load("model")                   # the fitted model (or unfitted)
    y = m.predict(X)                              # X: (n, F) float64
    m.fit(X_train, y_train)                       # train afresh (Setup, then one pass)
    p = m.predict_proba(X)                        # classification programs only

What the calls do (the evaluation protocol of azc, task index 0):
- `fit(X, y)` starts from a fresh state with seed `random_state`: zeroed
  memory, Setup once, then for each example in order (`epochs` passes):
  v0 = x, s0 = 0, Predict; for classification s1 = sigmoid(s1); if |y - s1|
  is NaN or above `max_abs_error` training stops (a `TrainingStoppedWarning`;
  `stopped_early_` is True); else v0 = x, s0 = y, Learn.  Training step t
  (counted over all fit calls of the state) draws its random numbers as
  execution (Predict, t) and (Learn, t).  `partial_fit` continues from the
  current state.
- `predict(X)` runs v0 = x, s0 = 0, Predict for each row in order on a copy
  of the fitted state (the model does not change; memory written by Predict
  carries from one row to the next within the call) and returns s1; row i
  draws as validation execution `predict_count + i` (0 after fit).
  `predict_raw(X, keep_state=True)` keeps the state, as the protocol's
  validation does.  Classification: `predict_proba` gives [1 - p, p] with
  p = sigmoid(s1), and `predict` the class of p > 0.5.

Errors: bad input raises `InputError` (a ValueError), an unfitted model
`NotFittedError`, a library that cannot run here (another CPU, another ABI,
a missing file) `LibraryError` (an OSError) -- never a crash.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import sys
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

ABI_VERSION = 2
MAGIC = int.from_bytes(b"AZCMODEL", "little")
STATE_FIELDS = ("magic", "abi_version", "seed", "eval_type", "setup_done", "train_steps",
                "predict_count", "stopped", "fingerprint")
STATE_WORDS = -(-len(STATE_FIELDS) // 8) * 8  # header words (padded: 64-byte aligned memory)
INFO_INT_FIELDS = ("abi_version", "features", "scalars", "vectors", "matrices", "memory_size",
                   "state_size", "eval_type", "uses_random", "predict_random", "vector_base",
                   "vector_stride", "matrix_base", "matrix_stride", "fingerprint")
INFO_STR_FIELDS = ("triple", "cpu", "cpu_features", "program")
RMS_ERROR, ACCURACY = 1, 4
EVAL_TYPES = {"RMS_ERROR": RMS_ERROR, "ACCURACY": ACCURACY}
STATUS_OK, STATUS_STOPPED, STATUS_BADSTATE, STATUS_EINVAL = 0, 1, -1, -2
MANIFEST = "manifest.json"
STATE_FILE = "state.npz"
LIBRARY = "libmodel.so"
HERE = Path(__file__).resolve().parent

# LLVM CPU feature -> the flag Linux lists in /proc/cpuinfo: the instruction-set extensions
# generated code may use.  Features not listed here never add instructions to our code.
CPUINFO_FLAGS = {
    "sse3": "pni", "ssse3": "ssse3", "sse4.1": "sse4_1", "sse4.2": "sse4_2", "sse4a": "sse4a",
    "popcnt": "popcnt", "lzcnt": "abm", "avx": "avx", "avx2": "avx2", "fma": "fma",
    "fma4": "fma4", "xop": "xop", "f16c": "f16c", "bmi": "bmi1", "bmi2": "bmi2",
    "movbe": "movbe", "adx": "adx", "aes": "aes", "pclmul": "pclmulqdq",
    "vpclmulqdq": "vpclmulqdq", "vaes": "vaes", "gfni": "gfni", "sha": "sha_ni",
    "avx512f": "avx512f", "avx512dq": "avx512dq", "avx512cd": "avx512cd",
    "avx512bw": "avx512bw", "avx512vl": "avx512vl", "avx512ifma": "avx512ifma",
    "avx512vbmi": "avx512vbmi", "avx512vbmi2": "avx512_vbmi2", "avx512vnni": "avx512_vnni",
    "avx512bitalg": "avx512_bitalg", "avx512vpopcntdq": "avx512_vpopcntdq",
    "avx512bf16": "avx512_bf16", "avx512fp16": "avx512_fp16",
    "avx512vp2intersect": "avx512_vp2intersect", "avxvnni": "avx_vnni",
    "amx-tile": "amx_tile", "amx-bf16": "amx_bf16", "amx-int8": "amx_int8",
}


class PredictorError(Exception):
    """Base of the errors of this module."""


class LibraryError(PredictorError, OSError):
    """The model library cannot be used here (missing, another ABI, another CPU)."""


class InputError(PredictorError, ValueError):
    """Bad input data (shape, feature count, NaN or infinity, labels)."""


class NotFittedError(PredictorError, ValueError, AttributeError):
    """The model has no fitted state yet."""


def not_fitted(message: str) -> NotFittedError:
    """A NotFittedError; also scikit-learn's NotFittedError when the process uses sklearn
    (which its checks and `check_is_fitted` callers expect)."""
    return _also_sklearns(NotFittedError, message)


class DataConversionWarning(UserWarning):
    """Input was converted (a column-vector y raveled)."""


def conversion_warning(message: str) -> DataConversionWarning:
    """A DataConversionWarning; also scikit-learn's when the process uses sklearn."""
    return _also_sklearns(DataConversionWarning, message)


def _also_sklearns(cls: type, message: str) -> Any:
    """An instance of `cls`, which is also an instance of scikit-learn's class of the same
    name when sklearn is loaded (azc does not import it)."""
    base = getattr(sys.modules.get("sklearn.exceptions"), cls.__name__, None)
    if base is None:
        return cls(message)
    both = _BOTH.get((cls, base))
    if both is None:
        both = _BOTH[cls, base] = type(cls.__name__, (cls, base), {"__module__": __name__})
    return both(message)


_BOTH: dict[tuple[type, type], type] = {}


class TrainingStoppedWarning(UserWarning):
    """Training stopped early: an error was NaN or above max_abs_error."""


class ModelInfo(ctypes.Structure):
    """`azc_model_info_t` of model.h (what `azc_model_info()` returns)."""

    _fields_ = ([(n, ctypes.c_int64) for n in INFO_INT_FIELDS] +
                [(n, ctypes.c_char_p) for n in INFO_STR_FIELDS])


# name -> (restype, argtypes) of the exported functions.
PROTOTYPES: dict[str, tuple[Any, tuple[Any, ...]]] = {
    "azc_model_info": (ctypes.c_void_p, ()),
    "azc_model_state_size": (ctypes.c_int64, ()),
    "azc_model_init": (ctypes.c_int32, (ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int64)),
    "azc_model_fit": (ctypes.c_int32, (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                       ctypes.c_int64, ctypes.c_double, ctypes.c_void_p)),
    "azc_model_predict": (ctypes.c_int32, (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                           ctypes.c_void_p, ctypes.c_void_p)),
}


# ---------------------------------------------------------------------------
# The library: loading, checks, and the calls.
# ---------------------------------------------------------------------------

def host_cpu_flags() -> set[str] | None:
    """The CPU flags of this machine from /proc/cpuinfo, or None where there is none."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        return None
    return None


def missing_cpu_features(cpu_features: str, flags: set[str] | None = None) -> list[str]:
    """The features of an LLVM feature string ("+avx2,-sse4a,...") this CPU lacks."""
    flags = host_cpu_flags() if flags is None else flags
    if flags is None:
        return []
    wanted = [f[1:] for f in cpu_features.split(",") if f.startswith("+")]
    return [f for f in wanted if f in CPUINFO_FLAGS and CPUINFO_FLAGS[f] not in flags]


def _machine_arch() -> str:
    arch = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch)


def check_target(triple: str, cpu: str, cpu_features: str, where: str) -> None:
    """LibraryError unless code generated for this target runs on this machine."""
    arch = triple.split("-", 1)[0].lower()
    host = _machine_arch()
    if arch and host and arch != host:
        raise LibraryError(f"{where} was compiled for {arch} ({triple}); this machine is "
                           f"{host}: export the program again on this machine")
    missing = missing_cpu_features(cpu_features)
    if missing:
        raise LibraryError(
            f"{where} was compiled for CPU {cpu!r} and uses {', '.join(missing)}, which this "
            f"CPU lacks: running it would crash (illegal instruction).  Export the program "
            f"again on this machine, or with --target generic for any x86-64 CPU")


class Library:
    """The functions of one model library, and what it reports about itself."""

    def __init__(self, functions: Mapping[str, Callable[..., Any]], origin: str,
                 keepalive: object = None, check_cpu: bool = True):
        self.origin = origin
        self.keepalive = keepalive  # what owns the native code (a CDLL, a JIT engine)
        self._init = functions["azc_model_init"]
        self._fit = functions["azc_model_fit"]
        self._predict = functions["azc_model_predict"]
        address = functions["azc_model_info"]()
        if not address:
            raise LibraryError(f"{origin}: azc_model_info returned NULL")
        raw = ModelInfo.from_address(address)
        info: dict[str, Any] = {n: int(getattr(raw, n)) for n in INFO_INT_FIELDS}
        info.update({n: (getattr(raw, n) or b"").decode() for n in INFO_STR_FIELDS})
        self.info = info
        if info["abi_version"] != ABI_VERSION:
            raise LibraryError(f"{origin} has model ABI {info['abi_version']}; this predictor.py "
                               f"speaks ABI {ABI_VERSION}: use the predictor.py of its export")
        if check_cpu:  # (code the JIT made for this very process needs no check)
            check_target(info["triple"], info["cpu"], info["cpu_features"], origin)
        self.features = info["features"]
        self.state_words = info["state_size"] // 8
        self.eval_type = info["eval_type"]

    @staticmethod
    def open(path: str | os.PathLike[str]) -> Library:
        """The library of an exported folder (or a library file), checked for this machine.

        With a folder, its manifest is checked first: a library for another
        CPU is refused before it is even loaded.
        """
        path = Path(path)
        if path.is_dir():
            manifest = read_manifest(path)
            file = path / manifest.get("library", LIBRARY)
            target = manifest.get("target", {})
            check_target(target.get("triple", ""), target.get("cpu", ""),
                         target.get("features", ""), str(file))
        else:
            file = path
        if not file.is_file():
            raise LibraryError(f"model library not found: {file}")
        key = str(file.resolve())
        st = os.stat(key)
        ident = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        cached = _OPEN.get(key)
        if cached is not None and cached[0] == ident:
            return cached[1]
        load_from = key
        if cached is not None:  # replaced since loaded: the loader would return the old one
            load_from = _private_copy(file)
        try:
            dll = ctypes.CDLL(load_from)
        except OSError as exc:
            raise LibraryError(f"cannot load the model library {file}: {exc}") from None
        finally:
            if load_from != key:
                os.unlink(load_from)  # the loaded copy stays mapped
        functions = {}
        for name, (restype, argtypes) in PROTOTYPES.items():
            try:
                fn = getattr(dll, name)
            except AttributeError:
                raise LibraryError(f"{file} is not an azc model library (no {name})") from None
            fn.restype, fn.argtypes = restype, argtypes
            functions[name] = fn
        lib = Library(functions, str(file), dll)
        _OPEN[key] = (ident, lib)
        return lib

    @staticmethod
    def from_addresses(addresses: dict[str, int], origin: str,
                       keepalive: object = None) -> Library:
        """A library from the addresses of its functions in this process (a JIT that
        generated them for this CPU)."""
        functions = {name: ctypes.CFUNCTYPE(restype, *argtypes)(addresses[name])
                     for name, (restype, argtypes) in PROTOTYPES.items()}
        return Library(functions, origin, keepalive, check_cpu=False)

    def new_state(self, seed: int, eval_type: int = 0) -> np.ndarray:
        """A fresh state (zeroed memory, Setup not run yet) as float64 words."""
        state = np.zeros(self.state_words, dtype=np.float64)
        status = self._init(state.ctypes.data, seed & 0xFFFFFFFFFFFFFFFF, eval_type)
        if status != STATUS_OK:
            raise InputError(f"azc_model_init refused eval type {eval_type} (status {status})")
        return state

    def check_state(self, state: np.ndarray) -> None:
        """LibraryError unless the state belongs to this library."""
        header = state[:STATE_WORDS].view(np.uint64) if state.size >= STATE_WORDS else None
        if (state.dtype != np.float64 or state.size != self.state_words or header is None
                or int(header[STATE_FIELDS.index("magic")]) != MAGIC
                or int(header[STATE_FIELDS.index("abi_version")]) != ABI_VERSION
                or int(header[STATE_FIELDS.index("fingerprint")]) != self.info["fingerprint"]):
            raise LibraryError(f"the model state ({state.size} words) does not belong to "
                               f"{self.origin} (state of {self.state_words} words, ABI "
                               f"{ABI_VERSION})")

    def _check_call(self, state: np.ndarray, X: np.ndarray) -> None:
        """InputError/LibraryError unless a native call on these arrays is safe."""
        if not (isinstance(state, np.ndarray) and state.flags.c_contiguous
                and state.flags.writeable):
            raise InputError("the state must be a writable C-contiguous float64 array")
        self.check_state(state)
        if not (isinstance(X, np.ndarray) and X.dtype == np.float64 and X.ndim == 2
                and X.flags.c_contiguous and X.shape[1] == self.features):
            raise InputError(f"X must be a C-contiguous float64 array of shape (n, "
                             f"{self.features}), got {getattr(X, 'dtype', type(X))} "
                             f"{getattr(X, 'shape', '')}")

    def fit(self, state: np.ndarray, X: np.ndarray, y: np.ndarray,
            max_abs_error: float) -> tuple[int, int]:
        """Train on rows of X in order (see model.h); (status, examples trained)."""
        self._check_call(state, X)
        if not (isinstance(y, np.ndarray) and y.dtype == np.float64 and y.ndim == 1
                and y.flags.c_contiguous and y.shape[0] == X.shape[0]):
            raise InputError(f"y must be a C-contiguous float64 array of {X.shape[0]} labels")
        trained = ctypes.c_int64(0)
        status = self._fit(state.ctypes.data, X.ctypes.data, y.ctypes.data, X.shape[0],
                           float(max_abs_error), ctypes.addressof(trained))
        if status < 0:
            raise LibraryError(f"azc_model_fit failed with status {status}")
        return status, trained.value

    def predict(self, state: np.ndarray, X: np.ndarray,
                proba: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """(s1, sigmoid(s1) or None) for each row of X; advances the state."""
        self._check_call(state, X)
        n = X.shape[0]
        out = np.empty(n, dtype=np.float64)
        p = np.empty(n, dtype=np.float64) if proba else None
        status = self._predict(state.ctypes.data, X.ctypes.data, n, out.ctypes.data,
                               p.ctypes.data if p is not None else None)
        if status != STATUS_OK:
            raise LibraryError(f"azc_model_predict failed with status {status}")
        return out, p


_OPEN: dict[str, tuple[tuple[int, ...], Library]] = {}


def _private_copy(file: Path) -> str:
    """A copy of a library under a new name (the dynamic loader keys loaded libraries on
    their name, so a library replaced on disk must be loaded under another one)."""
    import shutil
    import tempfile
    fd, name = tempfile.mkstemp(prefix="azc-model-", suffix=".so")
    os.close(fd)
    shutil.copyfile(file, name)
    return name


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest.json of an exported folder."""
    path = Path(folder) / MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise LibraryError(f"{folder} is not an exported azc model (no {MANIFEST})") from None
    except (OSError, ValueError) as exc:
        raise LibraryError(f"cannot read {path}: {exc}") from None


# ---------------------------------------------------------------------------
# Input checks (the messages scikit-learn's conventions ask for).
# ---------------------------------------------------------------------------

def check_X(X: Any, name: str, features: int | None = None) -> np.ndarray:
    """X as a C-contiguous float64 (n, F) array of finite values, or InputError."""
    if X is None:
        raise InputError("X is None: expected an array of shape (n_samples, n_features)")
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(f"{name} does not accept sparse input: pass a dense array "
                        f"(X.toarray())")
    arr = np.asarray(X)
    if np.iscomplexobj(arr):
        raise InputError("Complex data not supported")
    if arr.ndim != 2:
        raise InputError(f"Expected a 2-D array of shape (n_samples, n_features), got "
                         f"{arr.ndim}-D with shape {arr.shape}. Reshape your data either "
                         f"using X.reshape(-1, 1) if it has a single feature or "
                         f"X.reshape(1, -1) if it is a single sample.")
    if arr.shape[0] < 1:
        raise InputError(f"Found array with 0 sample(s) (shape={arr.shape}) while a minimum "
                         f"of 1 is required.")
    if arr.shape[1] < 1:
        raise InputError(f"Found array with 0 feature(s) (shape={arr.shape}) while a minimum "
                         f"of 1 is required.")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if features is not None and arr.shape[1] != features:
        raise InputError(f"X has {arr.shape[1]} features, but {name} is expecting {features} "
                         f"features as input.")
    finite = np.isfinite(arr)
    if not finite.all():
        row = int(np.argwhere(~finite)[0][0])
        what = "NaN" if np.isnan(arr).any() else "infinity"
        raise InputError(f"Input X contains {what} (first at row {row}): the model needs "
                         f"finite features")
    return arr


def check_y(y: Any, n: int, name: str) -> np.ndarray:
    """y as a 1-D array of n labels (not yet float64), or InputError."""
    if y is None:
        raise InputError(f"{name} requires y to be passed, but the target y is None")
    arr = np.asarray(y)
    if np.iscomplexobj(arr):
        raise InputError("Complex data not supported")
    if arr.ndim == 2 and arr.shape[1] == 1:
        warnings.warn(conversion_warning(
            "A column-vector y was passed when a 1d array was expected. Please change the "
            "shape of y to (n_samples,), for example using ravel()."), stacklevel=3)
        arr = arr.ravel()
    if arr.ndim != 1:
        raise InputError(f"y should be a 1d array, got an array of shape {arr.shape} "
                         f"instead (one label per example; multi-output is not supported)")
    if arr.shape[0] != n:
        raise InputError(f"X has {n} samples but y has {arr.shape[0]}: one label per row")
    return arr


def _finite_labels(y: np.ndarray) -> np.ndarray:
    try:
        out = np.ascontiguousarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"Unknown label type: labels of dtype {y.dtype} are not "
                         f"numbers") from None
    if np.isnan(out).any():
        raise InputError("Input y contains NaN.")
    if not np.isfinite(out).all():
        raise InputError("Input y contains infinity or a value too large for dtype('float64').")
    return out


def resolve_seed(random_state: Any) -> int:
    """A 64-bit seed from an int, None (fresh entropy), a RandomState or a Generator."""
    if random_state is None:
        return int(np.random.default_rng().integers(0, 2**63))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1)) << 32 | int(
            random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63))
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return int(random_state) & 0xFFFFFFFFFFFFFFFF
    raise InputError(f"random_state must be an int, None, a numpy RandomState or Generator, "
                     f"got {random_state!r}")


class _ClassifierOnly:
    """A method that exists only on models of classification programs (like sklearn's
    `available_if`): `hasattr(regressor, "predict_proba")` is False."""

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn
        self.__doc__ = fn.__doc__

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self.fn
        if not obj._classification():
            raise AttributeError(f"{self.fn.__name__} is only available for classification "
                                 f"models (eval type ACCURACY)")
        return self.fn.__get__(obj, owner)


# ---------------------------------------------------------------------------
# The estimator.
# ---------------------------------------------------------------------------

class Model:
    """An exported program as a scikit-learn style estimator (see the module docstring).

    Parameters: `path`, the exported folder or library file (None: this
    module's folder); `random_state`, the seed of the program's random ops
    (an int, None for fresh entropy, or a numpy RandomState/Generator);
    `max_abs_error`, the training error that stops training (100, as in
    evaluation; NaN always stops); `epochs`, passes over the data in `fit`.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, random_state: Any = 0,
                 max_abs_error: float = 100.0, epochs: int = 1):
        self.path = path
        self.random_state = random_state
        self.max_abs_error = max_abs_error
        self.epochs = epochs

    # -- what subclasses (azc.Estimator) provide differently ------------------------------

    def _library_for(self, features: int | None) -> Library:
        """The library to run on X with `features` columns (None: the fitted one)."""
        lib = self.__dict__.get("_lib")
        if lib is None:
            lib = Library.open(self.path if self.path is not None else HERE)
            self._lib = lib
        if features is not None and features != lib.features:
            raise InputError(f"X has {features} features, but {type(self).__name__} is "
                             f"expecting {lib.features} features as input.")
        return lib

    def _eval_type(self) -> int:
        return self._library_for(None).eval_type

    # -- scikit-learn API -----------------------------------------------------------------

    @classmethod
    def _param_names(cls) -> list[str]:
        import inspect
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters (scikit-learn's convention)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Model:
        """Set constructor parameters; returns self."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise InputError(f"invalid parameter {name!r} for {type(self).__name__}; "
                                 f"valid parameters: {', '.join(valid)}")
            setattr(self, name, value)
        self.__dict__.pop("_lib", None)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    @property
    def _estimator_type(self) -> str:
        return "classifier" if self._classification() else "regressor"

    def _classification(self) -> bool:
        return self._eval_type() == ACCURACY

    def __sklearn_is_fitted__(self) -> bool:
        return "state_" in self.__dict__

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import ClassifierTags, InputTags, RegressorTags, Tags, TargetTags
        classification = self._classification()
        return Tags(estimator_type="classifier" if classification else "regressor",
                    target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags(poor_score=True, multi_class=False)
                    if classification else None,
                    regressor_tags=None if classification else RegressorTags(poor_score=True),
                    non_deterministic=self._predict_random(),
                    input_tags=InputTags(allow_nan=False))

    def _more_tags(self) -> dict[str, Any]:  # scikit-learn < 1.6
        return {"binary_only": True, "poor_score": True,
                "non_deterministic": self._predict_random(), "requires_y": True}

    def _predict_random(self) -> bool:
        lib = self.__dict__.get("_lib")
        try:
            return bool((lib or self._library_for(None)).info["predict_random"])
        except Exception:
            return False

    # -- training -------------------------------------------------------------------------

    def fit(self, X: Any, y: Any) -> Model:
        """Train from a fresh state: Setup, then `epochs` passes over the rows in order."""
        name = type(self).__name__
        X = check_X(X, name)
        labels = check_y(y, X.shape[0], name)
        lib = self._library_for(X.shape[1])
        for attr in ("state_", "classes_", "n_features_in_", "seed_"):
            self.__dict__.pop(attr, None)
        target = self._targets(labels, fitting=True)
        seed = resolve_seed(self.random_state)
        state = lib.new_state(seed, self._eval_type())
        self._train(lib, state, X, target, self.epochs)
        self.state_ = state
        self.seed_ = seed
        self.n_features_in_ = X.shape[1]
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> Model:
        """Continue training from the current state (a fresh one the first time)."""
        name = type(self).__name__
        X = check_X(X, name)
        labels = check_y(y, X.shape[0], name)
        if not self.__sklearn_is_fitted__():
            lib = self._library_for(X.shape[1])
            if classes is not None and self._classification():
                self._set_classes(np.asarray(classes))
            target = self._targets(labels, fitting=classes is None)
            seed = resolve_seed(self.random_state)
            state = lib.new_state(seed, self._eval_type())
            self._train(lib, state, X, target, 1)
            self.state_, self.seed_, self.n_features_in_ = state, seed, X.shape[1]
            return self
        if X.shape[1] != self.n_features_in_:
            raise InputError(f"X has {X.shape[1]} features, but {name} is expecting "
                             f"{self.n_features_in_} features as input.")
        lib = self._library_for(X.shape[1])
        target = self._targets(labels, fitting=False)
        state = np.array(self.state_, dtype=np.float64, copy=True)
        lib.check_state(state)
        self._train(lib, state, X, target, 1)
        self.state_ = state
        return self

    def _set_classes(self, classes: np.ndarray) -> None:
        classes = np.unique(classes)
        if classes.size != 2:
            raise InputError(f"Only binary classification is supported: got {classes.size} "
                             f"classes {classes.tolist()[:10]}")
        self.classes_ = classes

    def _targets(self, labels: np.ndarray, fitting: bool) -> np.ndarray:
        """The float64 labels the library trains on (0/1 for classification)."""
        if not self._classification():
            return _finite_labels(labels)
        if labels.dtype.kind == "f":
            _finite_labels(labels)
            if not np.all(labels == np.round(labels)):
                raise InputError("Unknown label type: continuous (a classification program "
                                 "needs class labels)")
        if labels.dtype.kind not in "biufUSO":
            raise InputError(f"Unknown label type: labels of dtype {labels.dtype}")
        if fitting:
            classes = np.unique(labels)
            if classes.size == 1:
                raise InputError(f"Only one class is present in y ({classes[0]!r}): a binary "
                                 f"classifier needs samples of 2 classes")
            if classes.size > 2:
                kind = "multiclass"
                raise InputError(f"Only binary classification is supported. The type of the "
                                 f"target is {kind} ({classes.size} classes).")
            self.classes_ = classes
        unknown = ~np.isin(labels, self.classes_)
        if unknown.any():
            raise InputError(f"y holds labels outside the fitted classes "
                             f"{self.classes_.tolist()}: {labels[unknown][:5].tolist()}")
        return np.ascontiguousarray(labels == self.classes_[1], dtype=np.float64)

    def _train(self, lib: Library, state: np.ndarray, X: np.ndarray, y: np.ndarray,
               epochs: int) -> None:
        if (isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer))
                or epochs < 1):
            raise InputError(f"epochs must be an integer of at least 1, got {epochs!r}")
        bound = self.max_abs_error
        if (isinstance(bound, bool) or not isinstance(bound, (int, float, np.floating))
                or not bound >= 0):
            raise InputError(f"max_abs_error must be a number >= 0 (inf: never stop), got "
                             f"{bound!r}")
        for _ in range(int(epochs)):
            status, trained = lib.fit(state, X, y, float(bound))
            if status == STATUS_STOPPED:
                words = state[:STATE_WORDS].view(np.int64)
                step = int(words[STATE_FIELDS.index("train_steps")]) - 1
                warnings.warn(TrainingStoppedWarning(
                    f"training stopped at step {step} (example {trained} of this pass): the "
                    f"error |y - prediction| was NaN or above max_abs_error="
                    f"{self.max_abs_error}"), stacklevel=3)
                return

    # -- prediction -----------------------------------------------------------------------

    def _fitted(self, X: Any) -> tuple[Library, np.ndarray]:
        if not self.__sklearn_is_fitted__():
            raise not_fitted(f"This {type(self).__name__} instance is not fitted yet. Call "
                             f"'fit' with appropriate arguments before using it.")
        X = check_X(X, type(self).__name__, self.n_features_in_)
        lib = self._library_for(X.shape[1])
        lib.check_state(np.asarray(self.state_))
        return lib, X

    def predict_raw(self, X: Any, keep_state: bool = False) -> np.ndarray:
        """s1 after Predict for each row (the raw score; for classification before sigmoid).

        With `keep_state`, the memory and the validation counter carry on in
        the model (as the evaluation protocol's validation does).
        """
        lib, X = self._fitted(X)
        state = np.array(self.state_, dtype=np.float64, copy=True)
        out, _ = lib.predict(state, X)
        if keep_state:
            self.state_ = state
        return out

    def predict(self, X: Any) -> np.ndarray:
        """Predictions for the rows of X: s1, or for classification the class of p > 0.5."""
        lib, X = self._fitted(X)
        state = np.array(self.state_, dtype=np.float64, copy=True)
        if not self._classification():
            return lib.predict(state, X)[0]
        _, p = lib.predict(state, X, proba=True)
        assert p is not None
        return self.classes_[(p > 0.5).astype(np.intp)]

    @_ClassifierOnly
    def predict_proba(self, X: Any) -> np.ndarray:
        """[1 - p, p] per row with p = sigmoid(s1), the probability of classes_[1]."""
        lib, X = self._fitted(X)
        state = np.array(self.state_, dtype=np.float64, copy=True)
        _, p = lib.predict(state, X, proba=True)
        assert p is not None
        return np.column_stack([1.0 - p, p])

    def score(self, X: Any, y: Any) -> float:
        """Accuracy (classification) or the coefficient of determination R^2."""
        pred = self.predict(X)
        labels = check_y(y, pred.shape[0], type(self).__name__)
        if self._classification():
            return float(np.mean(pred == labels))
        y = _finite_labels(labels)
        ss_res = float(np.sum((y - pred) ** 2))
        ss_tot = float(np.sum((y - y.mean()) ** 2))
        if ss_tot == 0.0:
            return 1.0 if ss_res == 0.0 else 0.0
        return 1.0 - ss_res / ss_tot

    # -- the state ------------------------------------------------------------------------

    def _header(self) -> np.ndarray:
        if not self.__sklearn_is_fitted__():
            raise not_fitted(f"This {type(self).__name__} instance is not fitted yet")
        return np.asarray(self.state_)[:STATE_WORDS].view(np.int64)

    @property
    def train_steps_(self) -> int:
        """Training steps run on the state (the next one draws as (Predict, this))."""
        return int(self._header()[5])

    @property
    def predict_count_(self) -> int:
        """Validation executions kept in the state (`predict_raw(..., keep_state=True)`)."""
        return int(self._header()[6])

    @property
    def stopped_early_(self) -> bool:
        """Whether training stopped on a NaN or too large error."""
        return bool(self._header()[7])

    def memory(self) -> dict[str, np.ndarray]:
        """The learned memory: {"s": (S,), "v": (V, F), "m": (M, F, F)} float64 copies."""
        self._header()
        info = self._library_for(None).info
        F = info["features"]
        mem = np.asarray(self.state_)[STATE_WORDS:]
        s = mem[:info["scalars"]].copy()
        v = np.array([mem[info["vector_base"] + i * info["vector_stride"]:][:F]
                      for i in range(info["vectors"])]).reshape(info["vectors"], F)
        m = np.array([mem[info["matrix_base"] + i * info["matrix_stride"]:][:F * F]
                      for i in range(info["matrices"])]).reshape(info["matrices"], F, F)
        return {"s": s, "v": v, "m": m}

    def set_memory(self, s: Any = None, v: Any = None, m: Any = None) -> Model:
        """Overwrite parts of the memory (e.g. weights learned elsewhere); returns self."""
        self._header()
        info = self._library_for(None).info
        F = info["features"]
        state = np.array(self.state_, dtype=np.float64, copy=True)
        mem = state[STATE_WORDS:]
        if s is not None:
            mem[:info["scalars"]] = np.asarray(s, dtype=np.float64).reshape(info["scalars"])
        if v is not None:
            vv = np.asarray(v, dtype=np.float64).reshape(info["vectors"], F)
            for i in range(info["vectors"]):
                o = info["vector_base"] + i * info["vector_stride"]
                mem[o:o + F] = vv[i]
        if m is not None:
            mm = np.asarray(m, dtype=np.float64).reshape(info["matrices"], F * F)
            for i in range(info["matrices"]):
                o = info["matrix_base"] + i * info["matrix_stride"]
                mem[o:o + F * F] = mm[i]
        self.state_ = state
        return self

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write the fitted state to `path` (a folder, default the model's: state.npz)."""
        self._header()
        folder = Path(path) if path is not None else Path(self.path or HERE)
        if folder.suffix == ".npz":
            file = folder
        else:
            file = folder / STATE_FILE
        arrays = {"state": np.asarray(self.state_)}
        if "classes_" in self.__dict__:
            arrays["classes"] = np.asarray(self.classes_)
        meta = json.dumps({"random_state": self.random_state if isinstance(
            self.random_state, int) else None, "seed": int(self.seed_),
            "max_abs_error": float(self.max_abs_error), "epochs": int(self.epochs),
            "abi_version": ABI_VERSION})
        arrays["meta"] = np.array(meta)
        np.savez(file, **arrays)  # type: ignore[arg-type]
        return file

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> Model:
        """The model of an exported folder, with its fitted state if it has one."""
        folder = Path(path) if path is not None else HERE
        # the folder of this very module is path=None: unpickled elsewhere, the model then
        # uses the library beside the predictor.py that unpickles it
        model = cls(path=None if folder.resolve() == HERE else folder)
        lib = model._library_for(None)
        file = folder / STATE_FILE
        if file.is_file():
            model._load_state(file, lib)
        return model

    def _load_state(self, file: Path, lib: Library) -> None:
        with np.load(file, allow_pickle=False) as data:
            state = np.array(data["state"], dtype=np.float64)
            meta = json.loads(str(data["meta"]))
            classes = np.array(data["classes"]) if "classes" in data.files else None
        lib.check_state(state)
        if meta.get("random_state") is not None:
            self.random_state = meta["random_state"]
        self.max_abs_error = meta.get("max_abs_error", self.max_abs_error)
        self.epochs = meta.get("epochs", self.epochs)
        self.state_ = state
        self.seed_ = int(meta["seed"])
        self.n_features_in_ = lib.features
        if classes is not None:
            self.classes_ = classes
        elif lib.eval_type == ACCURACY:
            self.classes_ = np.array([0.0, 1.0])

    # -- pickling -------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_lib", None)  # native code is not pickled: reloaded from `path`
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def load(path: str | os.PathLike[str] | None = None) -> Model:
    """The model of an exported folder (default: this module's), fitted if it was saved so."""
    return Model.load(path)

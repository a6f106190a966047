//! Binding of `Generator`, `default_generator`, `manual_seed` and `randperm` (see `pyfw/generator.py`).

use pyo3::exceptions::{PyMemoryError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString};

use super::tensor::list_from_bytes;
use super::{py_repr, py_str, type_name, Borrow, IntoPyResult};
use crate::generator::{Generator, DEFAULT_SEED};

/// A SplitMix64 random number generator, bit-identical to `pyfw.Generator`.
#[pyclass(module = "pyfw_rs", name = "Generator")]
pub struct PyGenerator {
    pub(crate) g: Generator,
}

fn check_seed(seed: &Bound<'_, PyAny>) -> PyResult<u64> {
    if seed.is_instance_of::<PyBool>() || !seed.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "Generator: seed must be an int, got {}",
            type_name(seed)
        )));
    }
    if let Ok(v) = seed.extract::<i64>() {
        return Ok(v as u64); // two's complement: seed mod 2**64
    }
    seed.extract::<u64>().map_err(|_| match seed.str() {
        Ok(text) => PyValueError::new_err(format!(
            "Generator: seed must be in [-2**63, 2**64), got {text}"
        )),
        Err(e) => e,
    })
}

/// A seed argument: an int (not a bool) in [-2**63, 2**64), reduced modulo 2**64.
pub(crate) struct Seed(u64);

impl<'a, 'py> FromPyObject<'a, 'py> for Seed {
    type Error = PyErr;

    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Seed> {
        check_seed(&obj).map(Seed)
    }
}

/// `(seed, state)` from a `get_state()` dict, checked as `pyfw.generator._check_state`
/// checks it, with the same messages: a dict (TypeError) with exactly the keys "seed" and
/// "state" (ValueError), each an int (TypeError) in [0, 2**64) (ValueError).
fn check_state(state: &Bound<'_, PyAny>) -> PyResult<(u64, u64)> {
    let who = "Generator.set_state";
    let dict = state.cast::<PyDict>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{who}: expected a dict with keys 'seed' and 'state', got {}",
            type_name(state)
        ))
    })?;
    if dict.len() != 2 || !dict.contains("seed")? || !dict.contains("state")? {
        let keys = PyList::new(state.py(), dict.keys())?;
        return Err(PyValueError::new_err(format!(
            "{who}: expected the keys 'seed' and 'state', got {}",
            py_repr(&keys)?
        )));
    }
    let mut out = [0u64; 2];
    for (slot, key) in out.iter_mut().zip(["seed", "state"]) {
        let v = dict
            .get_item(key)?
            .ok_or_else(|| PyValueError::new_err(format!("{who}: {key} is missing")))?;
        if v.is_instance_of::<PyBool>() || !v.is_instance_of::<PyInt>() {
            return Err(PyTypeError::new_err(format!(
                "{who}: {key} must be an int, got {}",
                type_name(&v)
            )));
        }
        *slot = v.extract::<u64>().map_err(|_| {
            let text = v
                .str()
                .and_then(|s| s.to_cow().map(|c| c.into_owned()))
                .unwrap_or_default();
            PyValueError::new_err(format!("{who}: {key} must be in [0, 2**64), got {text}"))
        })?;
    }
    Ok((out[0], out[1]))
}

/// `n` checked as `pyfw.generator._check_count`: an int (TypeError), positive (ValueError).
fn check_count(n: &Bound<'_, PyAny>, who: &str) -> PyResult<u64> {
    if n.is_instance_of::<PyBool>() || !n.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "{who}: n must be an int, got {}",
            type_name(n)
        )));
    }
    if n.le(0)? {
        return Err(PyValueError::new_err(format!(
            "{who}: n must be positive, got {}",
            py_str(n)?
        )));
    }
    n.extract::<u64>().map_err(|_| {
        let text = n
            .str()
            .and_then(|s| s.to_cow().map(|c| c.into_owned()))
            .unwrap_or_default();
        PyValueError::new_err(format!("{who}: n must be below 2**64, got {text}"))
    })
}

/// `n` as a count of items to allocate.
pub(crate) fn check_len(n: &Bound<'_, PyAny>, who: &str) -> PyResult<usize> {
    let n = check_count(n, who)?;
    usize::try_from(n).map_err(|_| {
        PyMemoryError::new_err(format!("{who}: n = {n} is too large to hold in memory"))
    })
}

/// A float argument taken as it came, so that `uniform` and `normal` check their two
/// arguments together, in `pyfw`'s order; `Raw(None)` stands for the default value.
struct Raw<'py>(Option<Bound<'py, PyAny>>);

impl<'a, 'py> FromPyObject<'a, 'py> for Raw<'py> {
    type Error = PyErr;

    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Raw<'py>> {
        Ok(Raw(Some(obj.to_owned())))
    }
}

/// `isinstance(obj, (str, bytes, bytearray))`.
fn is_text(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_instance_of::<PyString>()
        || obj.is_instance_of::<PyBytes>()
        || obj.is_instance_of::<PyByteArray>()
}

/// Two float arguments checked as `pyfw.Generator.uniform` and `.normal` check them: a str,
/// bytes or bytearray gets `TypeError("{who}: {a} and {b} must be numbers")`, then each is
/// converted by Python's own `float()` (so other failures raise what `float()` raises).
fn two_floats(
    py: Python<'_>,
    who: &str,
    names: (&str, &str),
    args: (Raw<'_>, Raw<'_>),
    defaults: (f64, f64),
) -> PyResult<(f64, f64)> {
    let (a, b) = args;
    if a.0.as_ref().is_some_and(is_text) || b.0.as_ref().is_some_and(is_text) {
        return Err(PyTypeError::new_err(format!(
            "{who}: {} and {} must be numbers",
            names.0, names.1
        )));
    }
    let float = py.get_type::<PyFloat>();
    let convert = |raw: Raw<'_>, default: f64| match raw.0 {
        None => Ok(default),
        Some(obj) => float.call1((obj,))?.extract::<f64>(),
    };
    let a = convert(a, defaults.0)?;
    let b = convert(b, defaults.1)?;
    Ok((a, b))
}

/// `repr(float(v))`, for messages identical to `pyfw`'s.
fn float_repr(py: Python<'_>, v: f64) -> PyResult<String> {
    py_repr(&PyFloat::new(py, v))
}

static DEFAULT: PyOnceLock<Py<PyGenerator>> = PyOnceLock::new();

/// The default generator of the module.
pub(crate) fn default_generator(py: Python<'_>) -> PyResult<&Bound<'_, PyGenerator>> {
    DEFAULT
        .get_or_try_init(py, || {
            Py::new(
                py,
                PyGenerator {
                    g: Generator::new(DEFAULT_SEED),
                },
            )
        })
        .map(|g| g.bind(py))
}

/// `generator` if it is a Generator, the default one for None, else a TypeError.
pub(crate) fn resolve<'py>(
    py: Python<'py>,
    generator: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyGenerator>> {
    match generator {
        None => Ok(default_generator(py)?.clone()),
        Some(g) if g.is_none() => Ok(default_generator(py)?.clone()),
        Some(g) => g.cast::<PyGenerator>().cloned().map_err(|_| {
            PyTypeError::new_err(format!(
                "generator must be a pyfw_rs.Generator, got {}",
                type_name(g)
            ))
        }),
    }
}

#[pymethods]
impl PyGenerator {
    #[new]
    #[pyo3(signature = (seed = Seed(DEFAULT_SEED)), text_signature = "(seed=0)")]
    fn new(seed: Seed) -> PyGenerator {
        PyGenerator {
            g: Generator::new(seed.0),
        }
    }

    /// Reset the state to `seed`; returns the generator, as in torch.
    fn manual_seed<'py>(
        slf: &Bound<'py, Self>,
        seed: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, Self>> {
        let s = check_seed(seed)?;
        slf.busy_mut()?.g.manual_seed(s);
        Ok(slf.clone())
    }

    /// The seed last given (reduced modulo 2**64).
    fn initial_seed(slf: &Bound<'_, Self>) -> PyResult<u64> {
        Ok(slf.busy_ref()?.g.initial_seed())
    }

    /// `{"seed": initial_seed(), "state": s}`: all the generator holds, as two ints in
    /// [0, 2**64). A new dict each call; `set_state` of it (in either backend) resumes the
    /// same stream.
    fn get_state<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        let (seed, state) = {
            let me = slf.busy_ref()?;
            (me.g.initial_seed(), me.g.state())
        };
        let d = PyDict::new(slf.py());
        d.set_item("seed", seed)?;
        d.set_item("state", state)?;
        Ok(d)
    }

    /// Restore a `get_state()` dict; returns the generator, as in torch. A dict with exactly
    /// the keys "seed" and "state", each an int in [0, 2**64); anything else raises TypeError
    /// (a wrong kind) or ValueError (wrong keys, out of range) and changes nothing.
    fn set_state<'py>(
        slf: &Bound<'py, Self>,
        state: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, Self>> {
        let (seed, s) = check_state(state)?;
        slf.busy_mut()?.g.set_state(seed, s);
        Ok(slf.clone())
    }

    /// The next raw 64-bit output.
    fn next_u64(slf: &Bound<'_, Self>) -> PyResult<u64> {
        Ok(slf.busy_mut()?.g.next_u64())
    }

    /// A float uniform in [0, 1) with 53 random bits.
    fn random(slf: &Bound<'_, Self>) -> PyResult<f64> {
        Ok(slf.busy_mut()?.g.random())
    }

    /// `low + (high - low) * random()`, with `low` and `high` converted to float first.
    /// (The arguments are converted before the generator is borrowed, so a `__float__`
    /// that draws from this generator works as in `pyfw`.)
    fn uniform(slf: &Bound<'_, Self>, low: Raw<'_>, high: Raw<'_>) -> PyResult<f64> {
        let who = "Generator.uniform";
        let (low, high) = two_floats(slf.py(), who, ("low", "high"), (low, high), (0.0, 1.0))?;
        Ok(slf.busy_mut()?.g.uniform(low, high))
    }

    /// A normal draw `mean + std * z` (Box-Muller; docs/NUMERICS.md, "Normal draws").
    /// `mean` and `std` are converted to float first; both must be finite and `std >= 0`.
    #[pyo3(signature = (mean = Raw(None), std = Raw(None)), text_signature = "($self, mean=0.0, std=1.0)")]
    fn normal(slf: &Bound<'_, Self>, mean: Raw<'_>, std: Raw<'_>) -> PyResult<f64> {
        let py = slf.py();
        let who = "Generator.normal";
        let (mean, std) = two_floats(py, who, ("mean", "std"), (mean, std), (0.0, 1.0))?;
        if !mean.is_finite() {
            return Err(PyValueError::new_err(format!(
                "{who}: mean must be finite, got {}",
                float_repr(py, mean)?
            )));
        }
        if !(std.is_finite() && std >= 0.0) {
            return Err(PyValueError::new_err(format!(
                "{who}: std must be finite and non-negative, got {}",
                float_repr(py, std)?
            )));
        }
        Ok(slf.busy_mut()?.g.normal(mean, std))
    }

    /// An unbiased integer in [0, n), by rejection sampling.
    fn randbelow(slf: &Bound<'_, Self>, n: &Bound<'_, PyAny>) -> PyResult<u64> {
        let n = check_count(n, "Generator.randbelow")?;
        slf.busy_mut()?.g.randbelow(n).py()
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        Ok(format!(
            "Generator(seed={})",
            slf.busy_ref()?.g.initial_seed()
        ))
    }
}

/// Seed the default generator; returns it, as `torch.manual_seed` does.
#[pyfunction]
fn manual_seed<'py>(
    py: Python<'py>,
    seed: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyGenerator>> {
    let g = default_generator(py)?;
    PyGenerator::manual_seed(g, seed)
}

/// A random permutation of `range(n)` as a list of ints (Fisher-Yates, from the end).
#[pyfunction]
#[pyo3(signature = (n, generator = None))]
fn randperm<'py>(
    py: Python<'py>,
    n: &Bound<'py, PyAny>,
    generator: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyList>> {
    let n = check_len(n, "randperm")?;
    let g = resolve(py, generator)?;
    let perm = g.busy_mut()?.g.randperm(n).py()?;
    // Built by CPython, which raises MemoryError where PyO3's PyList::new would panic.
    list_from_bytes(py, perm.len() * 8, "Q", &[perm.len()], |buf| {
        for (b, &i) in buf.chunks_exact_mut(8).zip(&perm) {
            b.copy_from_slice(&(i as u64).to_ne_bytes());
        }
    })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyGenerator>()?;
    m.add("default_generator", default_generator(m.py())?)?;
    m.add_function(wrap_pyfunction!(manual_seed, m)?)?;
    m.add_function(wrap_pyfunction!(randperm, m)?)?;
    Ok(())
}

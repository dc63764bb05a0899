"""CTC basics: the collapse map and the α recursion, best path vs prefix beam search, LM fusion, the STFT front end.

Reproduces: S1 (seed 000 "CTC TRAINING : CTC LOSS": the collapse map B removes repeats, then blanks; the α recursion
            computes p(y|x) = Σ_{π: B(π) = y} Π_t p(π_t|x) — equal to optax.ctc_loss and to the brute-force sum over
            all K^T alignments on small random problems, padded batches included),
            S2 ("CTC DECODING BY COMBINING THE ALTERNATIVES": best path can miss the most probable labelling that a
            prefix beam search finds; shallow fusion argmax_y p(y|x)·p_LM(y)^α·wordcount(y)^β can change the
            decision), S3 ("CTC EXAMPLE ON VOICE RECOGNITION": the spectrogram's STFT uses a 25 ms window and a 15 ms
            step).
Method:     S1: `jaxdl.speech.ctc.collapse` on worked alignments; `ctc_alpha_batch` (the notes' recursion) and
            `ctc_loss` (optax, made safe) vs `all_labelling_log_probs` (NumPy float64 enumeration) on NUM_PROBLEMS
            random (T ≤ 6, K ≤ 4) problems with random frame and label lengths; infeasible ones must agree on −∞.
            S2: `crafted_best_path_vs_beam` (p(blank) = 0.6 per frame: best path "" at 0.36, yet p("a") = 0.64);
            on random peaky problems, how often best path misses the exact argmax_y p(y|x) and how often the prefix
            beam search (host, and the jit batched one) finds it; a bigram character LM that flips "ab" to "ba",
            with the fused score checked against log p_CTC + α log p_LM + β·|words| computed independently.
            S3: the course preset `COURSE_STFT` at 16 kHz (400-sample window, 240-sample hop, 512-point FFT) on a
            spoken sentence — the notes' "Rue Wolfgang Doeblin, zéro huit, six cents Givet" synthesised by eSpeak
            NG (voice fr-fr; the optional [speech] extra), or a synthetic chirp when eSpeak NG is missing (the
            report says which) — power spectrogram vs librosa.stft with the same parameters, and a 40-band log-mel.
Command:    jaxdl reproduce ctc_basics --out=report/
            (get_config is a placeholder: this experiment trains nothing; `jaxdl train` on it trains ds2_small on
            espeak_speech — see experiments/deepspeech2_builtin.py for that run.)
Expected:   S1 max |Δ log p| < 1e-4 (float32 vs float64); S2 best path "" vs beam "a", LM fusion flips the
            decision; S3 window 25 ms, step 15 ms, spectrogram = librosa's to float32 precision.
CPU time:   ≈ 20-40 s (mostly jit compilation).
"""
from __future__ import annotations

import math

import numpy as np

from jaxdl import plots
from jaxdl.config import base_config
from jaxdl.reproduce import Claim, ClaimResult, verdict

NUM_PROBLEMS = 120
SENTENCE = 'Rue Wolfgang Doeblin, zéro huit, six cents Givet'
SAMPLE_RATE = 16000

CLAIMS = {
    'S1': Claim('S1', 'CTC collapse removes repeats, then blanks; the α recursion equals the brute-force sum over '
                'alignments', '000',
                'collapse of worked alignments as the notes define B; max |log p_α − log p_brute| and |log p_optax − '
                'log p_brute| < 1e-4 over random problems (padded batches), infeasible problems −∞ in both'),
    'S2': Claim('S2', 'Best-path vs prefix beam search; LM fusion argmax p(y|x)·p_LM(y)^α·wordcount(y)^β', '000',
                'on the crafted table best path gives "" and the beam "a" (the exact argmax); on random problems the '
                'beam (host and jit) finds the exact argmax whenever best path misses it; an LM with α > 0 changes '
                'the decision and the fused score equals log p_CTC + α log p_LM + β·|words|'),
    'S3': Claim('S3', 'Spectrogram: STFT window 25 ms, step 15 ms', '000',
                'the course preset gives 400 / 240 samples at 16 kHz (25.0 / 15.0 ms) and a power spectrogram equal '
                'to librosa.stft with the same parameters (max relative error < 1e-3)'),
}


def get_config():
  """Placeholder (nothing here trains): ds2_small on the built-in speech, CTC loss, greedy CER/WER."""
  c = base_config()
  c.model.name = 'ds2_small'
  c.data.name = 'espeak_speech'
  c.data.eval_split = 'validation'
  c.loss.name = 'ctc'
  c.optimizer.name = 'adam'
  c.optimizer.learning_rate = 1e-3
  c.train.batch_size = 16
  c.train.num_steps = 500
  c.decode.metrics = ('cer', 'wer')
  return c


# ---------------------------------------------------------------------------------------------------- S1
COLLAPSE_EXAMPLES = (('hhe-l-lll-oo', 'hello'), ('--c-aaa-t-', 'cat'), ('aa', 'a'), ('a-a', 'aa'), ('----', ''))


def _log_softmax(x):
  x = np.asarray(x, np.float64)
  m = x.max(-1, keepdims=True)
  return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def random_problems(rng, n: int, T: int, K: int, max_labels: int = 3, scale: float = 2.0):
  """n padded problems: log-probs [n, T, K], frame lengths, labels [n, max_labels] (no blank), label lengths."""
  lp = _log_softmax(rng.normal(size=(n, T, K)) * scale)
  frames = rng.integers(1, T + 1, n)
  nlab = rng.integers(0, max_labels + 1, n)
  labels = rng.integers(1, K, (n, max_labels))
  labels[np.arange(max_labels)[None] >= nlab[:, None]] = 0
  return lp, frames, labels, nlab


def s1(ctx, num_problems):
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from jaxdl.speech import ctc  # pylint: disable=g-import-not-at-top
  alphabet = '-abcdehlot'
  coll = [(a, ''.join(alphabet[i] for i in ctc.collapse([alphabet.index(ch) for ch in a])), want)
          for a, want in COLLAPSE_EXAMPLES]
  collapse_ok = all(got == want for _, got, want in coll)
  rng = np.random.default_rng(0)
  d_alpha = d_optax = 0.0
  n_inf = inf_ok = 0
  total = 0
  shapes = ((3, 4), (5, 3), (6, 3), (5, 4)) if num_problems >= 40 else ((5, 3), (4, 4))   # (T, K)
  for T, K in shapes:
    n = max(1, num_problems // len(shapes))
    lp, frames, labels, nlab = random_problems(rng, n, T, K)
    fpad = (np.arange(T)[None] >= frames[:, None]).astype(np.float32)
    lpad = (np.arange(labels.shape[1])[None] >= nlab[:, None]).astype(np.float32)
    la, _ = ctc.ctc_alpha_batch(jnp.asarray(lp, jnp.float32), fpad, labels, lpad)
    lo = ctc.ctc_loss(jnp.asarray(lp, jnp.float32), fpad, labels, lpad, reduction='none')
    la, lo_loss, feas = np.asarray(la), np.asarray(lo['loss']), np.asarray(lo['feasible'])
    for b in range(n):
      table = ctc.all_labelling_log_probs(lp[b, :frames[b]])
      ref = table.get(tuple(int(v) for v in labels[b, :nlab[b]]), -math.inf)
      total += 1
      if ref == -math.inf:
        n_inf += 1
        inf_ok += int(la[b] == -np.inf and feas[b] == 0)
      else:
        d_alpha = max(d_alpha, abs(float(la[b]) - ref))
        d_optax = max(d_optax, abs(-float(lo_loss[b]) - ref))
  fig = _alpha_figure(ctx)
  ok = collapse_ok and d_alpha < 1e-4 and d_optax < 1e-4 and inf_ok == n_inf
  shown = ', '.join(f'{a} → "{g}"' for a, g, _ in coll)
  return ClaimResult('S1', f'collapse: {shown}; {total} problems: max |Δ| α {d_alpha:.1e}, optax {d_optax:.1e}; '
                     f'{inf_ok}/{n_inf} infeasible −∞ in all three', verdict(ok),
                     'α recursion in log space (jaxdl.speech.ctc.ctc_alpha_batch, float32), optax.ctc_loss through '
                     'jaxdl.speech.ctc.ctc_loss, brute force over every K^T alignment in float64 NumPy.', [fig])


def _alpha_figure(ctx):
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  from jaxdl.speech import ctc  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(3)
  lp = _log_softmax(rng.normal(size=(8, 4)) * 1.5)
  labels = [1, 2, 2]                   # "abb": the repeated b needs a blank between
  logp, alpha = ctc.ctc_alpha(lp, labels)
  fig, ax = plt.subplots(figsize=(6, 3.2))
  a = np.asarray(alpha).T
  im = ax.imshow(np.where(np.isfinite(a), a, np.nan), aspect='auto', origin='lower', cmap='viridis')
  ax.set_yticks(range(7))
  ax.set_yticklabels(['-', 'a', '-', 'b', '-', 'b', '-'])
  ax.set_xlabel('frame t')
  ax.set_ylabel("extended label y'")
  ax.set_title(f'log α_t(s) for "abb" (log p(y|x) = {float(logp):.3f})')
  fig.colorbar(im, ax=ax)
  return plots.save(fig, ctx.figure('alpha'))


# ---------------------------------------------------------------------------------------------------- S2
def _bigram_lm(K: int, prefer: dict) -> np.ndarray:
  """A (K, K) table of natural-log p(c | previous) with context 0 = <s> and column 0 = </s>; `prefer` maps a context
  to the character (or 0 = </s>) that gets probability 0.9, the rest sharing 0.1."""
  table = np.full((K, K), 0.1 / (K - 1))
  for ctxt, c in prefer.items():
    table[ctxt] = 0.1 / (K - 1)
    table[ctxt, c] = 0.9
  return np.log(table)


def s2(ctx, num_problems):
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from jaxdl.speech import ctc, decoding  # pylint: disable=g-import-not-at-top
  lp = decoding.crafted_best_path_vs_beam()
  bp = decoding.best_path(lp)[0]
  beam = decoding.prefix_beam_search(lp, 4)[0]
  exact = ctc.all_labelling_log_probs(lp)
  crafted_ok = bp[0] == () and beam[0] == (1,) and max(exact, key=exact.get) == (1,)
  # Random peaky problems: the exact argmax vs best path and vs the beam (host and jit).
  rng = np.random.default_rng(1)
  n, T, K = num_problems, 6, 3
  lps = _log_softmax(rng.normal(size=(n, T, K)) * 1.2)
  jit = decoding.batched_prefix_beam_search(jnp.asarray(lps, jnp.float32), np.full(n, T), beam_width=16)
  jit_ids, jit_len = np.asarray(jit[0]), np.asarray(jit[1])
  bp_miss = beam_found = jit_found = 0
  for b in range(n):
    table = ctc.all_labelling_log_probs(lps[b])
    best = max(table, key=table.get)
    if decoding.best_path(lps[b])[0][0] != best:
      bp_miss += 1
      beam_found += int(decoding.prefix_beam_search(lps[b], 16)[0][0] == best)
      jit_found += int(tuple(int(v) for v in jit_ids[b, 0, :jit_len[b, 0]]) == best)
  # LM fusion flips "ab" (acoustically best) to "ba" (the LM's favourite).
  alphabet = ['_', 'a', 'b']
  frames = np.log(np.array([[0.02, 0.55, 0.43], [0.02, 0.43, 0.55]]))
  table = _bigram_lm(3, {0: 2, 2: 1, 1: 0})        # <s> → b, b → a, a → </s>
  lm = decoding.DenseCharLM(table, alphabet)
  plain = decoding.prefix_beam_search(frames, 8)[0]
  alpha = 1.0
  fused = decoding.prefix_beam_search(frames, 8, lm=lm, alphabet=alphabet, alpha=alpha, beta=0.5, space_id=None)[0]
  fused_jit = decoding.batched_prefix_beam_search(jnp.asarray(frames[None], jnp.float32), np.array([2]),
                                                  beam_width=8, lm_table=table, alpha=alpha, beta=0.5)
  exact2 = ctc.all_labelling_log_probs(frames)
  y = fused[0]
  lm_logp = table[0, y[0]] + sum(table[a, b] for a, b in zip(y, y[1:])) + table[y[-1], 0]
  want_score = exact2[y] + alpha * lm_logp + 0.5 * 1          # one word (no separator)
  jit_y = tuple(int(v) for v in np.asarray(fused_jit[0])[0, 0, :int(np.asarray(fused_jit[1])[0, 0])])
  lm_ok = plain[0] == (1, 2) and y == (2, 1) and jit_y == y and abs(fused[1] - want_score) < 1e-6
  ok = crafted_ok and beam_found == bp_miss and jit_found == bp_miss and lm_ok
  fig = _decode_figure(ctx, lp, exact)
  name = lambda ids: '"' + ''.join('-ab'[i] for i in ids) + '"'
  return ClaimResult(
      'S2', f'crafted: best path {name(bp[0])} (p {math.exp(bp[1]):.2f}) vs beam {name(beam[0])} (p '
      f'{math.exp(beam[1]):.2f}); random: best path missed the exact argmax in {bp_miss}/{n}, beam found it in '
      f'{beam_found}/{bp_miss} (jit {jit_found}/{bp_miss}); LM α={alpha}: {name(plain[0])} → {name(y)}',
      verdict(ok), f'Fused score {fused[1]:.4f} = log p_CTC {exact2[y]:.4f} + α·log p_LM {lm_logp:.4f} + β·1 word '
      f'(β = 0.5), computed independently: {want_score:.4f}. The jit batched search gives {name(jit_y)}.', [fig])


def _decode_figure(ctx, lp, exact):
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, 2, figsize=(9, 3))
  p = np.exp(lp)
  axes[0].imshow(p.T, origin='lower', cmap='Blues', vmin=0, vmax=1)
  for t in range(p.shape[0]):
    for k in range(p.shape[1]):
      axes[0].text(t, k, f'{p[t, k]:.1f}', ha='center', va='center')
  axes[0].set_yticks([0, 1])
  axes[0].set_yticklabels(['blank', 'a'])
  axes[0].set_xlabel('frame')
  axes[0].set_title('p(π_t | x)')
  names = ['"' + ''.join('-a'[i] for i in y) + '"' for y in exact]
  axes[1].bar(names, [math.exp(v) for v in exact.values()], color=['C1' if y == () else 'C0' for y in exact])
  axes[1].set_title('p(y|x): best path picks "" (0.36), "a" has 0.64')
  return plots.save(fig, ctx.figure('best_path_vs_beam'))


# ---------------------------------------------------------------------------------------------------- S3
def spoken_sentence() -> tuple[np.ndarray, str]:
  """(waveform at 16 kHz, what it is): eSpeak NG's French voice speaking the notes' sentence, else a chirp."""
  try:
    from jaxdl.speech import espeak  # pylint: disable=g-import-not-at-top
    return espeak.synthesize(SENTENCE, voice='fr-fr', sample_rate=SAMPLE_RATE), f'"{SENTENCE}" (eSpeak NG, fr-fr)'
  except Exception as e:  # noqa: BLE001 — the optional extra is missing or the library failed to load
    t = np.arange(int(2.5 * SAMPLE_RATE)) / SAMPLE_RATE
    x = 0.5 * np.sin(2 * np.pi * (200 * t + 600 * t ** 2)) * (1 + np.sin(2 * np.pi * 3 * t)) / 2
    return x.astype(np.float32), f'a synthetic chirp 200 Hz → 3.2 kHz (eSpeak NG unavailable: {type(e).__name__})'


def s3(ctx):
  import librosa  # pylint: disable=g-import-not-at-top
  from jaxdl.speech import features  # pylint: disable=g-import-not-at-top
  x, what = spoken_sentence()
  p = features.COURSE_STFT.params(SAMPLE_RATE)
  S = np.asarray(features.spectrogram(x[None], n_fft=p.n_fft, hop_length=p.hop_length, win_length=p.win_length,
                                      window=features.COURSE_STFT.window, center=True))[0]
  ref = np.abs(librosa.stft(x, n_fft=p.n_fft, hop_length=p.hop_length, win_length=p.win_length, window='hann',
                            center=True, pad_mode='constant')).T ** 2
  rel = float(np.abs(S - ref).max() / ref.max()) if S.shape == ref.shape else math.inf
  mel, _ = features.log_mel(x[None], sample_rate=SAMPLE_RATE, n_mels=40, normalize=None)
  win_ms, hop_ms = 1000 * p.win_length / SAMPLE_RATE, 1000 * p.hop_length / SAMPLE_RATE
  ok = (p.win_length, p.hop_length) == (400, 240) and rel < 1e-3
  fig = _spectrogram_figure(ctx, x, S, np.asarray(mel)[0], p, what)
  return ClaimResult('S3', f'window {p.win_length} samples = {win_ms:.1f} ms, step {p.hop_length} = {hop_ms:.1f} ms, '
                     f'{p.n_fft}-point FFT at {SAMPLE_RATE} Hz; {S.shape[0]} frames for {len(x) / SAMPLE_RATE:.2f} s; '
                     f'max rel. error vs librosa {rel:.1e}', verdict(ok),
                     f'Signal: {what}. Power spectrogram (jaxdl.speech.features.spectrogram, Hann window, centred '
                     'frames) and 40-band log-mel (features.log_mel).', [fig])


def _spectrogram_figure(ctx, x, S, mel, p, what):
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  hop_s = p.hop_length / SAMPLE_RATE
  fig, axes = plt.subplots(3, 1, figsize=(9, 7))
  axes[0].plot(np.arange(len(x)) / SAMPLE_RATE, x, lw=0.5)
  axes[0].set_title(what)
  axes[0].set_xlim(0, len(x) / SAMPLE_RATE)
  ext = [0, S.shape[0] * hop_s, 0, SAMPLE_RATE / 2000]
  axes[1].imshow(10 * np.log10(S.T + 1e-10), origin='lower', aspect='auto', extent=ext, cmap='magma')
  axes[1].set_ylabel('kHz')
  axes[1].set_title(f'power spectrogram (dB), STFT {1000 * p.win_length / SAMPLE_RATE:.0f} ms window, '
                    f'{1000 * hop_s:.0f} ms step')
  axes[2].imshow(mel.T, origin='lower', aspect='auto', extent=[0, mel.shape[0] * hop_s, 0, mel.shape[1]],
                 cmap='magma')
  axes[2].set_ylabel('mel band')
  axes[2].set_xlabel('time (s)')
  axes[2].set_title('40-band log-mel')
  return plots.save(fig, ctx.figure('spectrogram'))


def reproduce(ctx, num_problems: int = NUM_PROBLEMS):
  return [s1(ctx, num_problems), s2(ctx, num_problems), s3(ctx)]

"""audiosds: Score Distillation Sampling for audio (Audio-SDS).

A frozen text-conditioned audio diffusion model (a *prior*, see :mod:`audiosds.priors`) steers
the parameters of any differentiable audio renderer (:mod:`audiosds.renderers`) toward a
text prompt. :mod:`audiosds.tasks` joins the two.
"""

__version__ = "0.1.0"

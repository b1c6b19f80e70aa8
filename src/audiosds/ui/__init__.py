"""``audiosds ui``: a local web page for every task, over the same command line.

The page (``static/``) talks to a small server (:mod:`.server`) that runs each task as the CLI
command it stands for (:mod:`.jobs`, :mod:`.forms`): a run started in the browser writes exactly
the run folder the shell would, and either can resume the other's runs.

Why not Gradio, the ecosystem's usual choice: every job here must be the CLI itself in a child
process (so Cancel is the CLI's own clean stop and the bytes match the shell's), must survive a
page reload, and only the runs folder may ever be served. Those are a job queue and a file rule of
our own either way; what is left for a framework is one page and a few JSON routes, which the
standard library serves with no extra dependency to install.
"""

from .server import Server, UiConfig, serve

__all__ = ["Server", "UiConfig", "serve"]

"""How the FnApiRunner reports a local SDK worker process that died (Beam internals, apache-beam
2.77).

With --direct_running_mode=multi_processing,
`fn_api_runner.worker_handlers.SubprocessSdkWorkerHandler.start_worker` runs
`local_job_service.SubprocessSdkWorker.run` in a thread named 'run_worker', which raises
RuntimeError('Worker subprocess exited with return code N') when the worker process exits with N !=
0. Nothing else reports it (pipeline/runtime/worker_watch.py explains why that matters).
"""

from __future__ import annotations

import re
from typing import Optional

WORKER_THREAD_NAME = 'run_worker'
_RETURN_CODE = re.compile(r'Worker subprocess exited with return code (-?\d+)')


def worker_exit_code(args) -> Optional[int]:
  """The exit code of a local Beam worker process that a thread's uncaught exception reports, or None.

  Args:
    args: threading.ExceptHookArgs.
  """
  if (
    args.thread is None
    or args.thread.name != WORKER_THREAD_NAME
    or args.exc_type is not RuntimeError
  ):
    return None
  match = _RETURN_CODE.search(str(args.exc_value))
  return int(match.group(1)) if match else None

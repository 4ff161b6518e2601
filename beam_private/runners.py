"""The module path of the FnApiRunner, the DirectRunner's batch engine (not a public name).

The converter runs on it by default so that --direct_running_mode and --direct_num_workers always
apply: the plain DirectRunner may first try the Prism runner, which downloads a binary (no network
at run time here). The Airflow DAG passes the same path to its Beam operator.
"""

FN_API_RUNNER = 'apache_beam.runners.portability.fn_api_runner.fn_runner.FnApiRunner'

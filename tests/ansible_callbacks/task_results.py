"""An Ansible callback for the tests: every task's per-host results, as JSON, in a file.

ansible-core carries no JSON stdout callback (that is ansible.posix's), so
the tests enable this one (ANSIBLE_CALLBACKS_ENABLED=task_results) and read
KERNELSPLIT_TASK_RESULTS when the playbook ends: {task name: {host: result}}.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

from ansible.module_utils.common.json import AnsibleJSONEncoder
from ansible.plugins.callback import CallbackBase

DOCUMENTATION = '''
name: task_results
type: notification
short_description: every task's per-host results in a JSON file (tests)
description: Writes the results, by task name and host, to the file KERNELSPLIT_TASK_RESULTS names.
requirements: ['enabled in ANSIBLE_CALLBACKS_ENABLED']
'''


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'notification'
    CALLBACK_NAME = 'task_results'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        self.results = {}

    def _record(self, result, **extra):
        entry = dict(result._result, **extra)
        self.results.setdefault(result._task.get_name(), {})[result._host.get_name()] = entry

    def v2_runner_on_ok(self, result):
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, failed=True)

    def v2_runner_on_unreachable(self, result):
        self._record(result, unreachable=True)

    def v2_runner_on_skipped(self, result):
        self._record(result, skipped=True)

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get('KERNELSPLIT_TASK_RESULTS')
        if path:
            with open(path, 'w') as out:
                json.dump(self.results, out, cls=AnsibleJSONEncoder)

"""The man pages: they render without a warning and document every key and option."""

import argparse
import re
import subprocess

import pytest

from dnf_kernelsplit.command import KernelsplitCommand
from dnf_kernelsplit.config import Config
from harness import ROOT

MAN = ROOT / 'man'
PAGES = {'dnf-kernelsplit.8': 'DNF-KERNELSPLIT', 'kernelsplit.conf.5': 'KERNELSPLIT.CONF',
         'kernelsplit.1': 'KERNELSPLIT'}


def render(path) -> str:
    """PATH as man(1) shows it; fails on any troff warning (-ww: every kind)."""
    done = subprocess.run(['groff', '-man', '-ww', '-Tutf8', '-rLL=80n', str(path)],
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == '', done.stderr
    # the terminal output's overstrikes (bold, underline) removed
    return re.sub(r'.\x08', '', done.stdout)


def man_warnings(path) -> str:
    done = subprocess.run(['man', '--warnings', '-l', str(path)], capture_output=True, text=True,
                          env={'MANWIDTH': '80', 'MAN_KEEP_FORMATTING': '0', 'PATH': '/usr/bin:/bin'})
    assert done.returncode == 0, done.stderr
    return done.stderr


@pytest.mark.parametrize('page, title', PAGES.items())
def test_renders_without_warnings(page, title):
    text = render(MAN / page)
    assert text.lstrip().startswith('%s(%s)' % (title, page[-1]))
    assert man_warnings(MAN / page) == ''


def test_every_configuration_key_has_an_entry():
    text = render(MAN / 'kernelsplit.conf.5')
    keys = [key for key in Config._fields if key != 'source']
    for key in keys:
        assert re.search(r'^ {7}%s \(' % key, text, re.M), key


def test_every_check_option_is_documented():
    parser = argparse.ArgumentParser()
    KernelsplitCommand.set_argparser(parser)
    options = set(re.findall(r'--[a-z][a-z-]*', parser.format_usage()))
    assert '--json' in options
    text = render(MAN / 'dnf-kernelsplit.8')
    synopsis = text[text.index('SYNOPSIS'):text.index('DESCRIPTION')]
    for option in options:
        if option == '--help':
            continue
        assert option in synopsis, option
        assert re.search(r'^ {7}%s\b' % re.escape(option), text, re.M), option


def test_every_kernelsplit_command_option_is_documented():
    from dnf_kernelsplit.cli import build_parser
    text = render(MAN / 'kernelsplit.1')
    synopsis = text[text.index('SYNOPSIS'):text.index('DESCRIPTION')]
    commands = build_parser()._subparsers._group_actions[0].choices
    assert set(commands) == {'check', 'fix'}
    for name, parser in commands.items():
        assert 'kernelsplit %s' % name in synopsis
        for action in parser._actions:
            for option in action.option_strings:
                if option in ('-h', '--help'):
                    continue
                assert option in synopsis or option in ('--assumeyes', '--config',
                                                         '--cacheonly', '--verbose'), option
                assert re.search(r'^ {7}(\S+, )?%s\b' % re.escape(option), text, re.M), option

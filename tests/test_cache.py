"""Exact mode's answers kept in dnf's cachedir: same answers, read instead of computed."""

import os

import pytest

from dnf_kernelsplit import cache as cache_module
from dnf_kernelsplit.cache import AnswerCache
from dnf_kernelsplit.packages_dnf4 import Dnf4Lookup
from harness import dnf_base

SHA256 = (8, bytes(range(32)))    # hawkey's (type, digest) for an rpm's checksum
ALIASES = ['pci:v000010DEd00001E84sv00001458sd000037A8bc03sc00i00', 'xen:vif']
ANSWER = (True, [('pci:v000010DEd*sv*sd*bc03sc*i*', 'nouveau'), ('xen:vif', None)])
NEW = '6.9.1-1.x86_64'


def test_an_answer_comes_back_as_it_went_in(tmp_path):
    cache = AnswerCache.in_cachedir(str(tmp_path))
    key = cache.key('kernel-drivers-gpu-6.9.1-1.x86_64', SHA256, ALIASES)
    assert cache.get(key) is None
    cache.put(key, ANSWER)
    assert cache.get(key) == ANSWER
    assert (cache.hits, cache.misses) == (1, 1)
    assert os.listdir(tmp_path / 'kernelsplit') == [key]


def test_the_key_is_the_package_content_and_the_set_of_modaliases(tmp_path):
    cache = AnswerCache.in_cachedir(str(tmp_path))
    key = cache.key('kernel-drivers-6.9.1-1.x86_64', SHA256, ALIASES)
    assert key == cache.key('kernel-drivers-6.9.1-1.x86_64', SHA256, ALIASES[::-1] + ALIASES)
    assert len({key,
                cache.key('kernel-drivers-6.9.1-1.x86_64', SHA256, ALIASES[:1]),
                cache.key('kernel-drivers-6.9.1-1.x86_64', (8, bytes(32)), ALIASES),
                cache.key('kernel-drivers-6.9.1-2.x86_64', SHA256, ALIASES)}) == 4
    # a package without a checksum (a local .rpm) or no cachedir: nothing is kept
    assert cache.key('kernel-drivers-6.9.1-1.x86_64', None, ALIASES) is None
    assert AnswerCache.in_cachedir(None).key('k', SHA256, ALIASES) is None


@pytest.mark.parametrize('content', [b'', b'\x00garbage', b'\xe9\x01\x00\x00\x00'])
def test_a_corrupt_entry_is_a_miss(tmp_path, content):
    cache = AnswerCache.in_cachedir(str(tmp_path))
    key = cache.key('kernel-drivers-6.9.1-1.x86_64', SHA256, ALIASES)
    cache.put(key, ANSWER)
    (tmp_path / 'kernelsplit' / key).write_bytes(content)
    assert cache.get(key) is None


def test_an_unwritable_cachedir_only_means_no_cache(tmp_path):
    (tmp_path / 'kernelsplit').write_text('a file where the directory should be')
    cache = AnswerCache.in_cachedir(str(tmp_path))
    key = cache.key('kernel-drivers-6.9.1-1.x86_64', SHA256, ALIASES)
    cache.put(key, ANSWER)        # logs, does not raise
    assert cache.get(key) is None


def test_the_oldest_entries_go_past_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module, 'MAX_ENTRIES', 3)
    cache = AnswerCache.in_cachedir(str(tmp_path))
    keys = [cache.key('kernel-drivers-6.9.%d-1.x86_64' % n, SHA256, ALIASES) for n in range(5)]
    for age, key in enumerate(keys):
        cache.put(key, ANSWER)
        os.utime(tmp_path / 'kernelsplit' / key, (1000 + age, 1000 + age))
    assert sorted(os.listdir(tmp_path / 'kernelsplit')) == sorted(keys[2:])


def test_kernel_packages_reads_what_it_computed_before(make_root, tmp_path):
    """Real packages: the cached answers make the same release; a planted one is believed
    (so it is what is read), a corrupt one is computed again."""
    from dnf_kernelsplit.packages import kernel_packages, release_packages
    base = dnf_base(make_root('exact'))
    try:
        seeds = base.sack.query().available().filter(name='kernel-core', version='6.9.1')
        pkgs = release_packages(Dnf4Lookup(base.sack), NEW, seeds)
        gpu = [p for p in pkgs if p.name == 'kernel-drivers-gpu'][0]
        aliases = ['pci:v000010DEd00001E84sv00001458sd000037A8bc03sc00i00',
                   'pci:v00001000d0000005Dsv00001028sd00001F49bc01sc04i00']

        def release(cache):
            return kernel_packages(Dnf4Lookup(base.sack), NEW, pkgs, (), aliases, cache=cache)

        plain = release(None)
        assert plain.exact, 'the fixture must match something'
        cache = AnswerCache.in_cachedir(str(tmp_path))
        assert release(cache) == plain
        assert (cache.hits, cache.misses) == (0, len(pkgs))
        again = AnswerCache.in_cachedir(str(tmp_path))
        assert release(again) == plain
        assert (again.hits, again.misses) == (len(pkgs), 0)

        key = cache.key('%s-%s-%s.%s' % (gpu.name, gpu.version, gpu.release, gpu.arch),
                        gpu.chksum, aliases)
        cache.put(key, (True, []))
        assert release(cache).exact != plain.exact
        assert not any(e.package.name == 'kernel-drivers-gpu'
                       for entries in release(cache).exact.values() for e in entries)
        (tmp_path / 'kernelsplit' / key).write_bytes(b'\x00')
        assert release(cache) == plain
    finally:
        base.close()

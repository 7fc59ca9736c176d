"""Options of the link_baseline experiment (loaded by the root conftest.py)."""


def pytest_addoption(parser):
    group = parser.getgroup("link_baseline", "link_baseline experiment")
    group.addoption("--link-sizes", dest="link_sizes", default="1,16,256,1024,4096,16384",
                    help="payload sizes in KiB, comma separated (default: 1,16,256,1024,4096,16384)")

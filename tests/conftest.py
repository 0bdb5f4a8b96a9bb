import importlib.util

pytest_plugins = ["tests.fixtures.db", "tests.fixtures.browser"]
if importlib.util.find_spec("tests.fixtures.chain") is not None:
    pytest_plugins.append("tests.fixtures.chain")

pytest_plugins = ["captioner.testing"]

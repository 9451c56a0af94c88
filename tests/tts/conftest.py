import pytest
import torch


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from threads, and on a shared 2-core machine threads only contend."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    """exp/{codec,ar,nar}/model with a tiny random codec and tiny models (tests.tts.helpers_models);
    a module that needs other models defines its own `exp`."""
    from tests.tts.helpers_models import tiny_exp
    return tiny_exp(tmp_path_factory.mktemp("tinyexp"))


@pytest.fixture(scope="module")
def syn(exp):
    """The Synthesizer of `exp`."""
    from tts.synthesize import Synthesizer
    return Synthesizer.from_pretrained(exp_dir=exp)

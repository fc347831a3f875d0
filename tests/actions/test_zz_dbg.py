import gc, pytest
from tests.actions.test_graph_limits import test_retries_wait_for_the_limiter_too as _t
@pytest.mark.parametrize("i", range(6))
async def test_r(make_context, cloud, i):
    await _t(make_context, cloud)

"""dicom-upload's associations keep every DIMSE answer for the ``send_c_*`` call waiting for it.

pynetdicom's reactor on a requested association can take an answer off the DIMSE queue before
``send_c_*`` does (a race between its reactor checkpoint and ``_is_paused``), logs "Received
unexpected ... service message", and the caller waits out the DIMSE timeout: seen as ~30 s
stalls of ``send_c_store`` in the benchmark against a fast receiver. (C-STORE now goes through
``cstore._StoreChannel``, which has its own answer queue; C-ECHO still uses ``send_c_echo``.)
This puts an answer on the queue while nobody waits for it: a plain pynetdicom association
loses it to the reactor within milliseconds; one made by :func:`xnatnode.cstore._associate`
keeps it.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from xnatnode import cstore

from tests.dicom_receiver import receiver_fixtures

server, api, port = receiver_fixtures(60.0, "answers")


def _answer() -> Any:
    from pynetdicom.dimse_primitives import C_STORE

    rsp = C_STORE()
    rsp.MessageIDBeingRespondedTo = 1
    rsp.Status = 0x0000
    return rsp


@pytest.mark.parametrize("guarded", [False, True])
def test_an_answer_waits_for_its_sender(port: int, guarded: bool) -> None:
    target = cstore.Target("127.0.0.1", port)
    ae = cstore._ae(target)
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = cstore._associate(ae, target) if guarded else ae.associate("127.0.0.1", port, ae_title="XNAT")
    assert assoc.is_established
    try:
        answer = (1, _answer())
        assoc.dimse.msg_queue.put(answer)
        time.sleep(0.2)  # the reactor polls the queue every ~1 ms
        left = assoc.dimse.msg_queue.qsize()
        if guarded:
            assert left == 1
            assert assoc.dimse.get_msg(block=True) == answer
        else:
            assert left == 0, "pynetdicom's reactor no longer takes answers: _AnswersOnly may be dropped"
    finally:
        assoc.release()

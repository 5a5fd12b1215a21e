*** Settings ***
Documentation       Frames no client library would send, built byte by byte (RFC 6455): the
...                 WebSocket layer closes with 1002 (protocol error), 1007 (invalid UTF-8) or
...                 1009 (over ``max_frame_bytes``); a binary frame is refused in-band.

Resource            ../../resources/hostile.resource

Test Tags           P16
Suite Setup         The Hostile Arena Is Set Up
Suite Teardown      The Hostile Arena Is Torn Down
Test Setup          Snapshot Stored State
Test Teardown       The Case Left No Trace

Test Template       Malformed Frame "${kind}" Is Answered With "${outcome}"


*** Test Cases ***                              KIND                    OUTCOME
Unmasked Client Frame                           unmasked                close 1002
    [Tags]    spec:7-b
Reserved Opcode                                 reserved_opcode         close 1002
    [Tags]    spec:7-b
Reserved Bits Set Without An Extension          rsv_bits                close 1002
    [Tags]    spec:7-b
Invalid UTF-8 In A Text Frame                   invalid_utf8            close 1007
    [Tags]    spec:7-b
Frame Over The Frame Limit                      oversize                close 1009
    [Tags]    spec:7-c
Header Announcing A 1 GB Frame                  oversize_header         close 1009
    [Tags]    spec:7-c
Binary Frame                                    binary                  error binary_not_supported
    [Tags]    spec:6-b    spec:3.4-d

# robocop: off=line-too-long
*** Settings ***
Documentation       Per-action membership checks (P15): oscar is a user of the server but not a
...                 member of the arena. Every action on it is ``forbidden`` with exactly the text
...                 an unknown conversation gets, with no head, count or body in the reply.

Resource            ../../resources/hostile.resource

Test Tags           P15    spec:4.1-h
Suite Setup         The Hostile Arena Is Set Up
Suite Teardown      The Hostile Arena Is Torn Down
Test Setup          Snapshot Stored State
Test Teardown       The Case Left No Trace

Test Template       Oscar's Frame "${frame}" Is Denied Like An Unknown Conversation


*** Test Cases ***                              FRAME
Non-Member Send                                 {"type":"send","ref":"x1","conversation_id":"$CONV","client_msg_id":"spy-1","body":"let me in"}
Non-Member Subscribe                            {"type":"subscribe","ref":"x2","conversation_id":"$CONV"}
    [Tags]    spec:4.6-a
Non-Member History                              {"type":"history","ref":"x3","conversation_id":"$CONV","limit":100}
Non-Member Read Receipt                         {"type":"receipt","ref":"x4","conversation_id":"$CONV","kind":"read","seq":1}
    [Tags]    spec:4.4-b
Non-Member Delivery Receipt                     {"type":"receipt","ref":"x5","conversation_id":"$CONV","kind":"delivered","seq":1}
    [Tags]    spec:4.4-b
Non-Member Edit                                 {"type":"edit","ref":"x6","conversation_id":"$CONV","seq":1,"expected_version":1,"body":"mine"}
Non-Member Delete                               {"type":"delete","ref":"x7","conversation_id":"$CONV","seq":1,"expected_version":1}

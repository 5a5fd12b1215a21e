*** Settings ***
Documentation       Authentication at connect (P15): a bad token is refused on the upgrade with
...                 HTTP 401 and in ``hello`` with ``auth_failed`` and close 4501; an expired one
...                 with ``token_expired`` (close 4003, reconnect with a fresh token). Only HS256
...                 is accepted; ``none`` and other algorithms are refused.

Resource            ../../resources/hostile.resource

Suite Setup         The Hostile Arena Is Set Up
Suite Teardown      The Hostile Arena Is Torn Down
Test Setup          Snapshot Stored State
Test Teardown       The Case Left No Trace

Test Template       Connecting With A "${kind}" Token Given In "${where}" Ends With "${outcome}"


*** Test Cases ***                              KIND                    WHERE       OUTCOME
Hello Without Any Token                         valid                   none        auth_failed 4501
Malformed Token On The Upgrade                  malformed               header      HTTP 401 auth_failed
Malformed Token In Hello                        malformed               hello       auth_failed 4501
Badly Signed Token On The Upgrade               bad_signature           header      HTTP 401 auth_failed
Badly Signed Token In Hello                     bad_signature           hello       auth_failed 4501
Token With Algorithm None In The Query          alg_none                query       HTTP 401 auth_failed
Token With Algorithm None In Hello              alg_none                hello       auth_failed 4501
Token With A Refused Algorithm                  alg_hs512               hello       auth_failed 4501
Expired Token On The Upgrade                    expired                 header      HTTP 401 token_expired
Expired Token In Hello                          expired                 hello       token_expired 4003
Token Not Yet Valid                             not_yet_valid           hello       auth_failed 4501
Token For Another Audience                      wrong_audience          hello       auth_failed 4501
Token From Another Issuer                       wrong_issuer            header      HTTP 401 auth_failed
Token Without Expiry                            no_expiry               hello       auth_failed 4501
Token Naming An Unknown Device                  unknown_device          hello       auth_failed 4501
Token Naming Another User's Device              other_users_device      query       HTTP 401 auth_failed
A Valid Token Is Accepted (Control Case)        valid                   header      welcome

*** Settings ***
Documentation       Hostile input and access control (P14-P16): every bad input of the guarantees
...                 gets its documented error, close code or HTTP status; nothing is stored for it;
...                 the server stays up; and a bystander in the same conversation receives every
...                 message of a steady trickle during the whole barrage.

Resource            ../../resources/hostile.resource

Suite Setup         The Hostile Arena Is Set Up
Suite Teardown      The Hostile Arena Is Torn Down
Test Setup          Snapshot Stored State
Test Teardown       The Case Left No Trace
Test Tags           hostile
Test Timeout        30 seconds

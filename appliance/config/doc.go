// Package config owns the appliance's configuration: the TOML schema (one
// section per concern), its defaults, parsing with unknown keys rejected,
// validation against what the machine really has (CPUs, interfaces, NIC
// queues) and printing the effective configuration back as TOML.
//
// Each section is its own type in its own file and carries its defaults and
// its checks; adding a section means adding that file and one field to
// Config, nothing else.
//
// config must not import pipeline, afxdp, sipcore or any other package of
// this module: it only describes what the operator asked for, and the daemon
// translates a validated Config into the options of the packages it wires.
package config
